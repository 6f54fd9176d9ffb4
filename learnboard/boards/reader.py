"""Strict, typed access to a parsed TOML table, with helpful errors.

Every value is fetched through a :class:`Table`, which knows its field path
(``edges[3].part``) and the file it came from. When a table has been read,
:meth:`Table.done` rejects keys nobody asked for and suggests the closest known one,
so a typo never passes silently.
"""

from __future__ import annotations

import difflib
from typing import Any

from learnboard.errors import InputError

_MISSING = object()

TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    if not close and isinstance(word, str):
        low = word.lower()
        close = [c for c in choices if len(c) >= 3 and (low.startswith(c.lower())
                                                        or c.lower().startswith(low) and low)]
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    for kind, name in TYPE_NAMES.items():
        if _is(value, kind) and not (kind is float and _is(value, int)):
            return f"{name} ({value!r})" if kind not in (list, dict) else name
    return type(value).__name__


class Table:
    """A TOML table being read: typed getters that remember what was asked for."""

    def __init__(self, data: Any, path: str, source: str):
        self.path = path
        self.source = source
        if not isinstance(data, dict):
            raise self.error(f"must be a table, not {describe(data)}")
        self.data = data
        self.seen: set[str] = set()

    def field(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(self, message: str, key: str | int | None = None) -> InputError:
        field = self.field(key) if key is not None else (self.path or None)
        return InputError(message, source=self.source, field=field)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type, default: Any = _MISSING, hint: str = "") -> Any:
        """The value of ``key`` as ``kind`` (int accepted for float), or ``default``."""
        self.seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                where = f"[{self.path}]" if self.path else "the top level"
                raise self.error(
                    f"missing required field {key!r} ({TYPE_NAMES.get(kind, 'a value')}) in {where}"
                    + (f"; {hint}" if hint else ""),
                    key,
                )
            return default
        value = self.data[key]
        if not _is(value, kind):
            raise self.error(f"must be {TYPE_NAMES[kind]}, not {describe(value)}", key)
        if kind is float:
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise self.error("must be a finite number", key)
        return value

    def number(self, key: str, default: Any = _MISSING, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, unit: str = "") -> float:
        """A finite float within [lo, hi] (or (lo, hi] with ``lo_open``)."""
        value = self.get(key, float, default)
        if value is None or value is default and default is not _MISSING:
            return value
        unit = f" {unit}" if unit else ""
        if lo is not None and (value < lo or (lo_open and value == lo)):
            op = ">" if lo_open else ">="
            raise self.error(f"must be {op} {lo:g}{unit}, got {value:g}", key)
        if hi is not None and value > hi:
            raise self.error(f"must be <= {hi:g}{unit}, got {value:g}", key)
        return value

    def integer(self, key: str, default: Any = _MISSING, *, lo: int | None = None,
                hi: int | None = None) -> int:
        value = self.get(key, int, default)
        if value is None or value is default and default is not _MISSING:
            return value
        if lo is not None and value < lo:
            raise self.error(f"must be >= {lo}, got {value}", key)
        if hi is not None and value > hi:
            raise self.error(f"must be <= {hi}, got {value}", key)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.get(key, str, default)
        if value is default and default is not _MISSING:
            return value
        if value not in choices:
            options = " | ".join(repr(c) for c in choices)
            raise self.error(f"must be one of {options}, not {value!r}{suggest(value, choices)}", key)
        return value

    def items(self, key: str, kind: type, default: Any = _MISSING, *, length: int | None = None,
              min_length: int = 0) -> list:
        """An array whose elements are all ``kind``."""
        value = self.get(key, list, default)
        if value is default and default is not _MISSING:
            return value
        if length is not None and len(value) != length:
            raise self.error(f"must have {length} elements, not {len(value)}", key)
        if len(value) < min_length:
            raise self.error(f"must have at least {min_length} element(s), not {len(value)}", key)
        out = []
        for i, item in enumerate(value):
            if not _is(item, kind):
                raise InputError(
                    f"must be {TYPE_NAMES[kind]}, not {describe(item)}",
                    source=self.source, field=f"{self.field(key)}[{i}]",
                )
            out.append(float(item) if kind is float else item)
        return out

    def table(self, key: str, default: Any = _MISSING) -> Table | None:
        value = self.get(key, dict, default)
        if value is default and default is not _MISSING:
            return value
        return Table(value, self.field(key), self.source)

    def tables(self, key: str, default: Any = _MISSING) -> list[Table]:
        """An array of tables (``[[key]]``)."""
        value = self.get(key, list, default)
        if value is default and default is not _MISSING:
            return value
        return [Table(item, f"{self.field(key)}[{i}]", self.source) for i, item in enumerate(value)]

    def named_tables(self, key: str) -> dict[str, Table]:
        """A table of tables (``[key.NAME]``), in file order; absent means empty."""
        outer = self.table(key, None)
        if outer is None:
            return {}
        out = {}
        for name in outer.data:
            outer.seen.add(name)
            out[name] = Table(outer.data[name], outer.field(name), self.source)
        return out

    def done(self) -> None:
        """Reject any key that was never read, naming the closest known key."""
        unknown = [k for k in self.data if k not in self.seen]
        if unknown:
            key = unknown[0]
            known = sorted(self.seen)
            hint = suggest(key, known) or (f"; known keys: {', '.join(known)}" if known else "")
            raise self.error(f"unknown key {key!r}{hint}", key)
