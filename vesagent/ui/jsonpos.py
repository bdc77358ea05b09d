"""Where a JSON path (``backlogs[1].poll_interval``) sits in a JSON text: its line number.

``check-config`` names problems by JSON path; the console's editor shows them at a line. The
standard ``json`` module keeps no positions, so this walks the text once with a small scanner
that records the line of every member key and array element. It never raises: for text that
is not JSON (the case ``check-config`` reports with its own line) it returns what it found.
"""

from __future__ import annotations

import contextlib
import json
import re

_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DECODER = json.JSONDecoder()


def split_path(path: str) -> tuple[str | int, ...]:
    """``backlogs[1].poll_interval`` -> ``("backlogs", 1, "poll_interval")``."""
    return tuple(int(m[1]) if m[1] is not None else m[2] for m in _PART.finditer(path))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[tuple[str | int, ...], int] = {}

    def line_at(self, index: int) -> int:
        return self.text.count("\n", 0, index) + 1

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def value(self, i: int, path: tuple[str | int, ...]) -> int:
        i = self.skip(i)
        self.lines.setdefault(path, self.line_at(i))
        if i >= len(self.text):
            raise ValueError("end of text")
        ch = self.text[i]
        if ch == "{":
            return self.members(i + 1, path)
        if ch == "[":
            return self.elements(i + 1, path)
        if ch == '"':
            _s, end = _DECODER.raw_decode(self.text, i)
            return end
        for word in ("true", "false", "null"):
            if self.text.startswith(word, i):
                return i + len(word)
        match = _NUMBER.match(self.text, i)
        if match is None:
            raise ValueError("not a JSON value")
        return match.end()

    def members(self, i: int, path: tuple[str | int, ...]) -> int:
        i = self.skip(i)
        if self.text.startswith("}", i):
            return i + 1
        while True:
            i = self.skip(i)
            key, i = _DECODER.raw_decode(self.text, i)
            if not isinstance(key, str):
                raise ValueError("object key is not a string")
            child = (*path, key)
            self.lines.setdefault(child, self.line_at(i))
            i = self.skip(i)
            if not self.text.startswith(":", i):
                raise ValueError("expected ':'")
            i = self.value(i + 1, child)
            i = self.skip(i)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("}", i):
                return i + 1
            raise ValueError("expected ',' or '}'")

    def elements(self, i: int, path: tuple[str | int, ...]) -> int:
        i = self.skip(i)
        if self.text.startswith("]", i):
            return i + 1
        index = 0
        while True:
            i = self.value(i, (*path, index))
            index += 1
            i = self.skip(i)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("]", i):
                return i + 1
            raise ValueError("expected ',' or ']'")


def path_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The line of every member and element of the JSON in ``text`` (as far as it parses)."""
    scanner = _Scanner(text)
    with contextlib.suppress(ValueError, IndexError):  # partial text: keep what was found
        scanner.value(0, ())
    return scanner.lines


def line_of(text: str, path: str) -> int | None:
    """The line of ``path`` in ``text``; for a missing member, the line of its nearest parent.

    A path relative to ``vesagent_config`` also resolves when ``text`` is a whole
    cloud-extra-info object that holds it.
    """
    lines = path_lines(text)
    parts = split_path(path)
    if ("vesagent_config",) in lines and (not parts or parts[0] != "vesagent_config"):
        parts = ("vesagent_config", *parts)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return lines.get(())
