"""Watched folders as the daemon names them: absolute, normalised, none inside another."""

from __future__ import annotations

import os
from collections.abc import Iterable


def folder_root(folder: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(folder)))


def outermost(folders: Iterable[str]) -> list[str]:
    """The folders, without those inside another one of them (watching the outer covers them)."""
    out: list[str] = []
    for folder in sorted(set(folders)):
        if not any(folder == o or folder.startswith(o.rstrip(os.sep) + os.sep) for o in out):
            out.append(folder)
    return out
