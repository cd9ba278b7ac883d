"""Parsers that misbehave, for the sandbox tests (module level, so they can be pickled)."""

import os
import signal
import time

from memex.documents import Element


def hang() -> list[Element]:
    while True:
        time.sleep(0.01)


def eat_memory() -> list[Element]:
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))


def segfault() -> list[Element]:
    os.kill(os.getpid(), signal.SIGSEGV)
    return []


def fine(text: str) -> list[Element]:
    return [Element(text)]


def explode() -> list[Element]:
    raise RuntimeError("kaboom")
