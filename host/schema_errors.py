"""msgspec's validation errors in the product's words.

msgspec says ``Expected `int` >= 0 - at `$.schedule.controllers[...].s0```; a user is told
``schedule.controllers.2.s0: -1 is not a whole number >= 0 (the step the tolerance was
first reached)``: the field as the file spells it, the value at fault, and what the schema
(:mod:`msgspec.inspect`) expects there, with the field's ``Meta(description=...)``.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import msgspec
import msgspec.inspect as mi

_MAX = sys.float_info.max  # a float bounded by it on both sides is "finite"
_AT = re.compile(r"^(?P<text>.*?)(?: - at `(?:(?P<key>key)` in `)?\$(?P<path>[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_WORDS = {mi.BoolType: "true or false", mi.StrType: "a string", mi.ListType: "a list",
          mi.DictType: "an object", mi.StructType: "an object", mi.NoneType: "null"}
_MISSING = object()
Path = list  # of str (keys) and int (list indices)


class FieldError(ValueError):
    """A Struct's ``__post_init__`` check failed: ``field`` (relative to the Struct) and why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def explain(exc: msgspec.ValidationError, data: Any, schema: Any) -> tuple[str, str]:
    """``(field, message)`` for ``exc``, raised converting ``data`` to ``schema``."""
    m = _AT.match(str(exc))
    path = _path(data, schema, m["path"] or "", str(exc))
    if isinstance(exc.__cause__, FieldError):
        return _join(path, exc.__cause__.field), exc.__cause__.message
    node, value = _node(mi.type_info(schema), data, path), _value_at(data, path)
    named = _NAMED.match(m["text"])
    if named and named["what"] == "missing required":
        return _join(path, named["name"]), "is missing"
    if named:
        struct = _pick(node, value)
        names = sorted(f.encode_name for f in getattr(struct, "fields", ()))
        return _join(path, named["name"]), "unknown key" + (f"; allowed: {', '.join(names)}" if names else "")
    if m["key"] and isinstance(value, dict):  # a key of the wrong form
        key_type = getattr(_pick(node, value), "key_type", mi.StrType())
        pattern = getattr(getattr(key_type, "type", key_type), "pattern", None)
        bad = next((k for k in value if not (isinstance(k, str) and re.search(pattern or "", k))), None)
        about = (getattr(key_type, "extra_json_schema", None) or {}).get("description")
        return _join(path), f"key {bad!r} is not {about or _words(key_type)}"
    shown = "" if value is _MISSING else f"{_short(value)} "
    return _join(path), f"{shown}is not {_words(node)}"


def _words(t: Any, in_union: bool = False) -> str:
    """What type ``t`` accepts, in words: "a number > 0 and <= 1 (the nudge)"."""
    about = ""
    if isinstance(t, mi.Metadata):
        about, t = (t.extra_json_schema or {}).get("description", ""), t.type
    if isinstance(t, mi.UnionType):
        words = " or ".join(_words(u, True) for u in t.types if not isinstance(u, mi.NoneType))
    elif isinstance(t, mi.LiteralType):
        words = (" or ".join(repr(v) for v in t.values) if in_union
                 else "one of " + ", ".join(str(v) for v in t.values))
    elif isinstance(t, (mi.IntType, mi.FloatType)):
        bounds = [f"{op} {v:g}" for op, v in ((">", t.gt), (">=", t.ge), ("<", t.lt), ("<=", t.le))
                  if v is not None and abs(v) < _MAX]
        finite = isinstance(t, mi.FloatType) and t.le is not None and t.le >= _MAX
        kind = ("a whole number" if isinstance(t, mi.IntType) else
                "a finite number" if finite else "a number")
        words = f"{kind} {' and '.join(bounds)}" if bounds else kind
    elif isinstance(t, mi.ListType) and t.min_length:
        words = f"a list of at least {t.min_length} item{'s' if t.min_length > 1 else ''}"
    else:
        words = _WORDS.get(type(t), "a valid value")
    return f"{words} ({about})" if about else words


def _pick(t: Any, value: Any) -> Any:
    """The member of union ``t`` that describes ``value`` (a tagged Struct by its tag, else
    the one container); ``t`` itself when none is clear."""
    if isinstance(t, mi.Metadata):
        t = t.type
    if not isinstance(t, mi.UnionType):
        return t
    tagged = [u for u in t.types if isinstance(u, mi.StructType) and u.tag_field]
    if tagged and isinstance(value, dict):
        return next((u for u in tagged if value.get(u.tag_field) == u.tag), t)
    containers = [u for u in t.types if isinstance(u, (mi.StructType, mi.ListType, mi.DictType))]
    return containers[0] if len(containers) == 1 else t


def _node(t: Any, value: Any, path: Path) -> Any:
    """The type (msgspec.inspect) that describes the value at ``path``."""
    for s in path:
        t = _pick(t, value)
        if isinstance(t, mi.StructType):
            t = next((f.type for f in t.fields if f.encode_name == s), mi.AnyType())
        elif isinstance(t, mi.UnionType):  # a tagged union whose tag is wrong: its tags
            t = mi.LiteralType(tuple(u.tag for u in t.types if getattr(u, "tag_field", None) == s))
        elif isinstance(t, mi.ListType):
            t = t.item_type
        elif isinstance(t, mi.DictType):
            t = t.value_type
        else:
            return mi.AnyType()
        value = _value_at(value, [s])
    return t


def _path(data: Any, schema: Any, text: str, error: str) -> Path:
    """``.a[3].b`` as ``["a", 3, "b"]``. msgspec writes a dict's value as ``[...]``: the key
    is the one whose value alone gives the same error."""
    out: Path = []
    for name, index in _SEGMENT.findall(text):
        if index != "...":
            out.append(int(index) if index else name)
            continue
        holder = _value_at(data, out)
        out.append(next((str(k) for k, v in holder.items()
                         if _error(_replace(data, out, {k: v}), schema) == error), "*")
                   if isinstance(holder, dict) else "*")
    return out


def _error(data: Any, schema: Any) -> str | None:
    try:
        msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def _replace(data: Any, path: Path, new: Any) -> Any:
    """``data`` with the value at ``path`` replaced (containers copied, not changed)."""
    if not path:
        return new
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], new)
    return copy


def _value_at(data: Any, path: Path) -> Any:
    for s in path:
        try:
            data = data[s]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _join(path: Path, *more: str) -> str:
    out = ""
    for s in [*path, *more]:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
