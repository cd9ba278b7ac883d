"""The read facade's parameter checks (the same refusal through every door) and the local clock
its date expressions are read against."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memex.errors import BadRequest

MAX_K = 1000
MAX_TEXT = 4000


def text_param(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{what} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{what} is too long (at most {MAX_TEXT} characters)")
    return value.strip()


def k_param(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}")
    return value


def local_now() -> datetime:
    """Now in the local time zone, as a named zone where one can be found (TZ, /etc/localtime),
    so that a range crossing a daylight-saving change still starts and ends at local midnight."""
    now = datetime.now().astimezone()
    names = [os.environ.get("TZ", "").lstrip(":")]
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        names.append(target.split("/zoneinfo/", 1)[1])
    for name in filter(None, names):
        try:
            return now.astimezone(ZoneInfo(name))
        except (ValueError, ZoneInfoNotFoundError):
            continue
    return now
