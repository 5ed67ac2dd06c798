"""Shape checks over YAML with positions, collecting issues instead of stopping at the first."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from typing import Any

from authz.config.source import Located, SourceFile
from authz.errors import ConfigIssue


def closest(word: str, known: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The one of `known` that `word` most likely misspells: the same but for case, else
    the closest above `cutoff` (difflib's ratio); None when none is close."""
    options = sorted({str(k) for k in known})
    by_case = {option.lower(): option for option in options}
    if by_case.get(word.lower(), word) != word:
        return by_case[word.lower()]
    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'when'?` for a near miss among `known`, else ''."""
    near = closest(str(word), known)
    return f"; did you mean '{near}'?" if near else ""


class Reader:
    """Walks parsed YAML and records issues instead of stopping at the first."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.issues: list[ConfigIssue] = []

    def issue(self, at: Any, message: str) -> None:
        """Record an issue at a Located value (or the top of the file)."""
        self.issues.append(self.source.issue(at, message))

    def mapping(self, value: Any, where: Any, what: str, keys: set[str]) -> dict[str, Any]:
        """A mapping whose keys are all known; {} (and an issue) otherwise."""
        if not isinstance(value, dict):
            self.issue(where, f"{what} must be a mapping")
            return {}
        for key in value:
            if key not in keys:
                self.issue(
                    key,
                    f"unknown key '{key}' in {what}{did_you_mean(key, keys)}"
                    f" (known: {', '.join(sorted(keys))})",
                )
        return value

    @staticmethod
    def key(data: dict[str, Any], name: str, fallback: Any) -> Any:
        """The key itself (a Located string) so an issue about its value has a position."""
        return next((k for k in data if k == name), fallback)

    def text(self, value: Any, where: Any, what: str) -> Located | None:
        """A non-empty string."""
        if isinstance(value, Located) and value.strip():
            return value
        self.issue(value if isinstance(value, Located) else where, f"{what} must be a string")
        return None

    def status(self, value: Any, where: Any, what: str) -> int | None:
        """An HTTP status, or None when absent."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            self.issue(where, f"{what} must be an HTTP status between 100 and 599")
            return None
        return value

    def choice(self, value: Any, where: Any, what: str, options: tuple[str, ...]) -> str | None:
        """One of a fixed set of strings."""
        if value in options:
            return str(value)
        self.issue(
            value if isinstance(value, Located) else where,
            f"{what} must be one of: {', '.join(options)}",
        )
        return None

    def unique(self, names: list[Located], what: str) -> None:
        """An issue at every repeat of a name."""
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.issue(name, f"duplicate {what} '{name}'")
            seen.add(name)

    def number(self, data: dict[str, Any], name: str, where: Any, default: float) -> float:
        """A non-negative number under `name`, or the default when absent."""
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.issue(self.key(data, name, where), f"{name} must be a non-negative number")
            return default
        return float(value)

    def flag(self, data: dict[str, Any], name: str, where: Any, default: bool) -> bool:
        """A boolean under `name`, or the default when absent."""
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.issue(self.key(data, name, where), f"{name} must be true or false")
            return default
        return value

    def strings(self, data: dict[str, Any], name: str, where: Any) -> tuple[str, ...]:
        """A list of non-empty strings under `name` (a single string is a list of one)."""
        value = data.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.issue(self.key(data, name, where), f"{name} must be a list of strings")
            return ()
        return tuple(str(v) for v in value)

    def file(self, value: Any, where: Any, what: str) -> str | None:
        """A path to an existing file, relative paths resolved against the config's folder."""
        text = self.text(value, where, what)
        if text is None:
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(self.source.name)), text)
        if not os.path.isfile(path):
            self.issue(text, f"{what}: no such file: {path}")
            return None
        return path
