"""The message catalogue, host side, loaded from ``protocol.toml`` (the protocol's one
machine-readable definition): every command's arguments and result, telemetry fields,
events, error codes and fault flags, with types, units and ranges.

The firmware keeps the names and codes in ``lbfw/msgs.py`` and ``lbfw/consts.py``;
``docs/protocol.md``'s tables are generated from the definition
(``python -m learnboard.host.protocol_doc``), and tests check both ends' payloads
against it in the real MicroPython VM.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFINITION = Path(__file__).with_name("protocol.toml")
"""The protocol definition this module loads."""


class Field(NamedTuple):
    """One field of a message: type, unit ("" when dimensionless) and meaning; ``min``,
    ``max`` and ``enum`` bound its values where the definition gives them. A field with
    ``scale`` carries codes on the wire: the host multiplies by hello's ``scale[scale]``
    and hands on values in ``host_unit``."""

    name: str
    type: str
    unit: str
    doc: str
    optional: bool = False
    min: float | None = None
    max: float | None = None
    enum: tuple[str, ...] | None = None
    host_unit: str | None = None
    scale: str | None = None


class Command(NamedTuple):
    """A request the host can send and what it answers."""

    name: str
    doc: str
    args: tuple[Field, ...]
    result: tuple[Field, ...]


class Vector(NamedTuple):
    """A test vector's message: its frame is the codec's output for these values."""

    name: str
    type: int
    seq: int
    body: Any


def _load() -> dict:
    with DEFINITION.open("rb") as fh:
        return tomllib.load(fh)


_DEF = _load()


def _field(d: dict) -> Field:
    enum = d.get("enum")
    return Field(d["name"], d["type"], d["unit"], d["meaning"], bool(d.get("optional", False)),
                 d.get("min"), d.get("max"), tuple(enum) if enum is not None else None,
                 d.get("host_unit"), d.get("scale"))


def _fields(items: list[dict] | None) -> tuple[Field, ...]:
    return tuple(_field(d) for d in items or ())


VERSION: int = _DEF["protocol"]["version"]
"""Protocol version (the frame's version byte and hello's ``proto``)."""

LIMITS: dict[str, int] = dict(_DEF["limits"])
"""Frame sizes, request-id range and message limits."""

MESSAGE_TYPES: tuple[dict, ...] = tuple(_DEF["types"])
"""Frame types: code, name, direction, body."""

ErrorCode = IntEnum("ErrorCode", [(e["name"], e["code"]) for e in _DEF["errors"]],
                    module=__name__)
ErrorCode.__doc__ = "Codes of ERR replies (same numbers as the firmware's ``E_*``)."
ERROR_MEANINGS: dict[int, str] = {e["code"]: e["meaning"] for e in _DEF["errors"]}
ERROR_DETAIL: tuple[Field, ...] = _fields(_DEF["error_detail"])
"""Keys of an ERR reply's detail map (all optional)."""

Fault = IntFlag("Fault", [(f["name"], f["bit"]) for f in _DEF["faults"]], module=__name__)
Fault.__doc__ = "Bits of the telemetry/status ``flt`` field (same as the firmware's ``F_*``)."
FAULT_MEANINGS: dict[int, str] = {f["bit"]: f["meaning"] for f in _DEF["faults"]}

PARAMETERS: tuple[Field, ...] = _fields(_DEF["parameters"])

COMMANDS: dict[str, Command] = {
    c["name"]: Command(c["name"], c["doc"], _fields(c.get("args")), _fields(c.get("result")))
    for c in _DEF["commands"]
}

PARAMS_IN_ARGS = frozenset(c["name"] for c in _DEF["commands"] if c.get("params_args"))
"""Commands whose arguments are parameters (validated against PARAMETERS)."""
PARAMS_IN_RESULT = frozenset(c["name"] for c in _DEF["commands"] if c.get("params_result"))
"""Commands whose results are parameters."""

TELEMETRY: tuple[Field, ...] = _fields(_DEF["telemetry"])

EVENTS: dict[str, tuple[Field, ...]] = {e["name"]: _fields(e.get("data")) for e in _DEF["events"]}
EVENT_DOCS: dict[str, str] = {e["name"]: e["doc"] for e in _DEF["events"]}

VECTORS: tuple[Vector, ...] = tuple(
    Vector(v["name"], v["type"], v["seq"], json.loads(v["body"])) for v in _DEF["vectors"])
