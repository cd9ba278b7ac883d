"""Dates in words, the one way every connector writes them into the text it indexes ("Thursday
12 March 2026"): in English whatever the locale, so that "March" or "Thursday" in a question
finds the passage, and the answer check reads the same date in the source and in the answer."""

from __future__ import annotations

from datetime import date

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September")
MONTHS += ("October", "November", "December")


def spoken_day(day: date) -> str:
    """'Thursday 12 March 2026' (a datetime's date part)."""
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"
