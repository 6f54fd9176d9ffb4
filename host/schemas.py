"""The shape of every file the host reads back, in one place (see docs/runs.md, "Schemas").

Each file kind is a :mod:`msgspec` Struct: field names, types, ranges and defaults are the
annotations; what one field says about another is the Struct's ``__post_init__`` (raising
:class:`FieldError`). :func:`convert` checks parsed data against a Struct and turns the
library's error (``Expected `int` >= 0 - at `$.step```) into the product's
:class:`~learnboard.errors.InputError`: the file, the field (``schedule.controllers.2.s0``),
the value at fault in plain words, and what to do.

Files: a run folder's ``config.json`` (:class:`RunConfig`) and checkpoints
(:class:`Checkpoint`), calibrations (:class:`Calibration`), schedule files
(:class:`ScheduleFile`) and the port registry of running sessions (:class:`PortEntry`). Telemetry records are msgpack maps read
record by record (``learnboard.host.runlog``): only their framing is checked, a record's
keys are open (newer firmware adds some).
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec
from msgspec import Meta, Struct, field

from learnboard.errors import InputError

T = TypeVar("T")
_MAX = sys.float_info.max

# -- value types: the annotation says the range, the message says it in words -------------
Finite = Annotated[float, Meta(ge=-_MAX, le=_MAX)]
NonNegative = Annotated[float, Meta(ge=0, le=_MAX)]
Positive = Annotated[float, Meta(gt=0, le=_MAX)]
Fraction = Annotated[float, Meta(ge=0, le=1)]  # lambda
Nudge = Annotated[float, Meta(gt=0, le=1)]  # eta; also the tolerance controller's start
Whole = Annotated[int, Meta(ge=0)]
Count = Annotated[int, Meta(ge=1)]
PhaseNumber = Annotated[str, Meta(pattern=r"^[0-9]+$", description="a phase number")]


class FieldError(ValueError):
    """A ``__post_init__`` check failed: ``field`` (relative to the Struct) and what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# -- a run folder -------------------------------------------------------------------------


class ControllerState(Struct):
    """One tolerance controller's state (checkpoint ``schedule.controllers.<phase>``)."""

    lam: NonNegative
    s0: Annotated[int, Meta(ge=0, description="the step the tolerance was first reached")] | None


class ScheduleState(Struct):
    controllers: dict[PhaseNumber, ControllerState] | None = None
    reached_at: Whole | None = None


class EdgeStates(Struct):
    """What every checkpoint holds: the step and the edge states (all a plot needs)."""

    step: Whole
    k: list[Finite]


class Checkpoint(EdgeStates):
    """``checkpoints/step-NNNNNNNNN.json``: edge states and schedule state at a step (what
    a session needs to resume)."""

    c0: Annotated[float, Meta(ge=-_MAX, le=_MAX, description="the initial error")]
    c0_test: float | None = None  # nan/inf allowed: a test set without error yet
    p0: float | None = None
    tp0: float | None = None
    elapsed: Annotated[float, Meta(ge=0, le=_MAX, description="seconds")] = 0.0
    lam: Fraction = 0.0
    schedule: ScheduleState | None = None


class PhaseRecord(Struct, forbid_unknown_fields=True):
    """A schedule phase as config.json stores it (every field, unused ones null)."""

    kind: str = "constant"
    steps: Any = None
    lam: Any = None
    lam_to: Any = None
    tau: Any = None
    start: Any = None
    every: Any = None
    up: Any = None
    down: Any = None
    alpha: Any = None
    alpha_to: Any = None
    eta: Any = None
    eta_to: Any = None


class StopRecord(Struct, forbid_unknown_fields=True):
    steps: Any = None
    time: Any = None
    settled: Any = False
    settle_window: Any = 300
    settle_rel: Any = 0.02


class ScheduleRecord(Struct, forbid_unknown_fields=True):
    """config.json's ``schedule``; its values are checked as a schedule file's."""

    phases: list[PhaseRecord] = field(default_factory=lambda: [PhaseRecord()])
    init: Any = "uniform"
    chunk: Any = 50
    stop: StopRecord | None = None
    seed: Any = 0


class RunConfig(Struct, forbid_unknown_fields=True):
    """The session's part of ``config.json`` (the CLI adds board, port, ... beside it)."""

    task: str = "regression"
    schedule: ScheduleRecord | None = None
    alpha: Annotated[float, Meta(ge=0, le=_MAX, description="the learning rate")] | None = None
    eta: Annotated[float, Meta(gt=0, le=1, description="the nudge")] | None = None
    telemetry_every: Count = 10
    checkpoint_every: Count = 200
    seed: int = 0
    name: str = "run"


# -- schedule files (TOML) --------------------------------------------------------------

PHASE_KINDS = ("constant", "ramp", "tolerance")
INITS = ("low", "uniform", "random")
_TOLERANCE_ONLY = ("tau", "start", "every", "up", "down")


class PhaseFile(Struct, forbid_unknown_fields=True):
    """A ``[[phase]]`` table; None is "not given" (TOML has no null)."""

    kind: Literal["constant", "ramp", "tolerance"] = "constant"
    steps: Count | None = None
    lam: Fraction | None = None
    lam_to: Fraction | None = None
    tau: Positive | Literal["task"] | None = None
    start: Nudge | None = None
    every: Count | None = None
    up: Positive | None = None
    down: Positive | None = None
    alpha: NonNegative | None = None  # learning rate
    alpha_to: NonNegative | None = None
    eta: Nudge | None = None  # nudge amplitude
    eta_to: Nudge | None = None

    def __post_init__(self) -> None:
        if self.kind == "ramp":
            if self.lam_to is None:
                raise FieldError("lam_to", "a ramp needs lam_to (and lam, default 0)")
            if self.steps is None:
                raise FieldError("steps", "a ramp needs steps (its length)")
        elif self.lam_to is not None:
            raise FieldError("lam_to", "only a ramp phase takes lam_to")
        for key in ("alpha_to", "eta_to"):
            if getattr(self, key) is not None and self.steps is None:
                raise FieldError(key, "ramping a parameter needs the phase's steps")
            if getattr(self, key) is not None and getattr(self, key[:-3]) is None:
                raise FieldError(key[:-3], f"{key} needs a start value {key[:-3]}")
        if self.kind == "tolerance":
            if self.lam is not None:
                raise FieldError("lam", "a tolerance phase sets lambda itself; give start instead")
        else:
            for key in _TOLERANCE_ONLY:
                if getattr(self, key) is not None:
                    raise FieldError(key, "only a tolerance phase takes this key")


class StopFile(Struct, forbid_unknown_fields=True):
    """The ``[stop]`` table."""

    steps: Count | None = None
    time: Positive | None = None
    settled: bool = False
    settle_window: Count = 300
    settle_rel: Positive = 0.02


class ScheduleFile(Struct, forbid_unknown_fields=True):
    """A schedule file (``learnboard train --schedule``); see learnboard.host.schedule."""

    version: Any = None  # checked before conversion (learnboard.host.schedule._check_version)
    init: Literal["low", "uniform", "random"] = "uniform"
    chunk: Count = 50
    seed: int = 0
    stop: StopFile = field(default_factory=StopFile)
    phase: Annotated[list[PhaseFile], Meta(min_length=1, description="give at least one [[phase]] table")] = field(
        default_factory=lambda: [PhaseFile(lam=0.0)])

    def __post_init__(self) -> None:
        for i, p in enumerate(self.phase[:-1]):
            if p.steps is None:
                raise FieldError(f"phase[{i}].steps", "only the last phase may run without steps")
        bounded = self.stop.steps is not None or all(p.steps is not None for p in self.phase)
        if not bounded and self.stop.time is None and not self.stop.settled:
            raise FieldError("stop", "the session would never stop: give stop.steps, stop.time, "
                             "stop.settled = true or steps on every phase")


# -- calibrations -------------------------------------------------------------------------

CALIBRATION_FORMAT = 1


class AdcChannel(Struct):
    gain: Annotated[float, Meta(gt=0.5, lt=2.0, description="a plausible ADC gain")]
    offset_v: float


class AdcCalibration(Struct):
    channels: dict[str, AdcChannel]


class _Edges(Struct, tag_field="kind"):
    n: int

    def _per_edge(self, key: str, positive: bool = False) -> None:
        if len(getattr(self, key)) != self.n:
            raise FieldError(key, f"needs {self.n} finite{' positive' if positive else ''} "
                                  "numbers (one per edge)")


class DigipotEdges(_Edges, tag="digipot"):
    r_scale: list[Positive]
    r_wiper: list[Finite]

    def __post_init__(self) -> None:
        self._per_edge("r_scale", positive=True)
        self._per_edge("r_wiper")


class TransistorEdges(_Edges, tag="transistor"):
    vt: list[Finite]
    beta: list[Positive]

    def __post_init__(self) -> None:
        self._per_edge("vt")
        self._per_edge("beta", positive=True)


class UncalibratedEdges(_Edges, tag="none"):
    """Edge kinds calibration does not model (resistors only, mixed kinds)."""


class Calibration(Struct):
    """A calibration file (``learnboard calibrate``); docs/calibration.md lists every field."""

    format: int
    board: str
    desc_hash: str
    adc: AdcCalibration
    edges: Union[DigipotEdges, TransistorEdges, UncalibratedEdges]  # noqa: UP007 (tagged union)

    def __post_init__(self) -> None:
        if self.format != CALIBRATION_FORMAT:
            raise FieldError("format", f"is {self.format}; this learnboard reads format "
                                       f"{CALIBRATION_FORMAT}")


# -- the port registry ---------------------------------------------------------------------


class PortEntry(Struct):
    """``<runtime dir>/learnboard/ports/<port>.json``: the session holding a port."""

    pid: int
    run_dir: str
    port: str = ""
    since: float = 0.0


# -- reading and converting ---------------------------------------------------------------


def read_json(path: str | Path, *, missing: str = "file not found") -> Any:
    """The parsed JSON of ``path``; an InputError naming the file says why not (``missing``
    when there is no such file). NaN and Infinity are accepted: the host writes them."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(missing, source=str(p)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON (line {exc.lineno}: {exc.msg})", source=str(p)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}",
                         source=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(p)) from None
    except RecursionError:
        raise InputError("not JSON (nested too deeply)", source=str(p)) from None


def convert(data: Any, schema: type[T], source: str, hint: str = "") -> T:
    """``data`` (parsed JSON/TOML/msgpack) as ``schema``; else an InputError naming
    ``source``, the field and the value at fault, with ``hint`` (what to do) appended."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        try:
            fld, message = explain(exc, data, schema)
        except Exception:  # never hide the error behind a fault in its wording
            fld, message = "", str(exc)
        raise InputError(f"{message}; {hint}" if hint else message, source=source,
                         field=fld or None) from None


def try_convert(data: Any, schema: type[T]) -> T | None:
    """``data`` as ``schema``, or None when it does not fit (for files that are optional)."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError:
        return None


# -- msgspec's error in the product's words ----------------------------------------------

_AT = re.compile(r"^(?P<text>.*?)(?: - at `(?:(?P<key>key)` in `)?\$(?P<path>[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_EXPECTED = re.compile(r"^Expected `(?P<types>[^`]+)`(?P<cond>[^,]*?)(?:, got `(?P<got>[^`]+)`)?$")
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_INVALID = re.compile(r"^Invalid (?:enum )?value (?P<value>.+)$")
_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
          "array": "a list", "object": "an object", "null": "null"}
_MISSING = object()


def explain(exc: msgspec.ValidationError, data: Any, schema: Any) -> tuple[str, str]:
    """``(field, message)`` of a msgspec ValidationError raised converting ``data``."""
    m = _AT.match(str(exc))
    text, on_key = m["text"], m["key"] is not None
    segments = _segments(data, schema, m["path"] or "", str(exc))
    cause = exc.__cause__
    if isinstance(cause, FieldError):  # a __post_init__ check: its field is relative
        return _join(segments, cause.field), cause.message
    named = _NAMED.match(text)
    if named:
        fld = _join(segments, named["name"])
        if named["what"] == "missing required":
            return fld, "is missing"
        allowed = _fields_at(schema, data, segments)
        return fld, "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    value = _value_at(data, segments)
    if on_key:  # a dict key of the wrong form
        bad = next((k for k in value if try_convert(k, _key_type(schema, data, segments)) is None),
                   None) if isinstance(value, dict) else None
        expected = _EXPECTED.match(text)
        what = _phrase(expected["types"], expected["cond"]) if expected else "valid"
        key_meta = typing.get_args(_key_type(schema, data, segments))[1:]
        what = next((m.description for m in key_meta if isinstance(m, Meta) and m.description), what)
        return _join(segments), f"key {bad!r} is not {what}"
    expected = _EXPECTED.match(text)
    if expected:
        shown = "" if value is _MISSING else f"{_short(value)} "
        what = _phrase(expected["types"], expected["cond"])
        about = _description(schema, data, segments)
        return _join(segments), f"{shown}is not {what}" + (f" ({about})" if about else "")
    invalid = _INVALID.match(text)
    if invalid:
        choices = _choices(schema, data, segments)
        others = _other_words(schema, data, segments)
        if others:  # a number or a word: tau = 0.05 or "task"
            return _join(segments), (f"{invalid['value']} is not {' or '.join(others)} or "
                                     + " or ".join(repr(c) for c in choices))
        return _join(segments), (f"{invalid['value']} is not one of {', '.join(choices)}" if choices
                                 else f"{invalid['value']} is not a valid value")
    return _join(segments), text[:1].lower() + text[1:]


def _phrase(types: str, cond: str) -> str:
    """``float`` + `` >= 0.0`` -> "a number >= 0"; the float range bounds mean "finite"."""
    cond = cond.strip()
    length = re.match(r"of length (>=|<=)? ?(\d+)$", cond)
    if length:  # arrays: "of length >= 1"
        n = length[2]
        items = "item" if n == "1" else "items"
        return {">=": f"a list of at least {n} {items}", "<=": f"a list of at most {n} {items}"}.get(
            length[1] or "", f"a list of {n} {items}")
    bounds = re.findall(r"([<>]=?) (-?[0-9.e+]+)", cond)
    finite = any(abs(float(v)) >= _MAX for _, v in bounds)
    if bounds:
        cond = " and ".join(f"{op} {float(v):g}" for op, v in bounds if abs(float(v)) < _MAX)
    words = []
    for t in types.split(" | "):
        if t == "null":  # null is "not given": not a value to suggest
            continue
        w = _WORDS.get(t, f"`{t}`")
        if t == "float" and finite:
            w = "a finite number"
        words.append(f"{w} {cond}" if cond and t in ("int", "float", "str") else w)
    return " or ".join(words) or "null"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(segments: list[str | int], *more: str) -> str:
    out = ""
    for s in [*segments, *more]:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def _value_at(data: Any, segments: list[str | int]) -> Any:
    for s in segments:
        try:
            data = data[s]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _error(data: Any, schema: Any) -> str | None:
    try:
        msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def _segments(data: Any, schema: Any, path: str, error: str = "") -> list[str | int]:
    """``.a[3].b`` as ``["a", 3, "b"]``; a ``[...]`` (msgspec's "some dict value") becomes
    the key whose value fails, found by converting the data with that dict cut to one key."""
    out: list[str | int] = []
    for name, index in _SEGMENT.findall(path):
        if index == "...":
            holder = _value_at(data, out)
            key = None
            if isinstance(holder, dict):
                for k, v in holder.items():
                    if _error(_replace(data, out, {k: v}), schema) == error:
                        key = k
                        break
            out.append(str(key) if key is not None else "*")
        else:
            out.append(int(index) if index else name)
    return out


def _replace(data: Any, segments: list[str | int], new: Any) -> Any:
    if not segments:
        return new
    head, rest = segments[0], segments[1:]
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[head] = _replace(data[head], rest, new)
    return copy


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Struct)


def _members(tp: Any) -> list[Any]:
    """A union's types (without None), or ``[tp]``."""
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _pick(tp: Any, value: Any) -> Any:
    """The type of ``tp`` (maybe a union) that describes ``value``: a tagged union's member
    by the value's tag, else the Struct or container of an optional."""
    members = _members(tp)
    structs = [a for a in members if _is_struct(a)]
    if len(structs) > 1 and isinstance(value, dict):
        for s in structs:
            if value.get(s.__struct_config__.tag_field) == s.__struct_config__.tag:
                return s
    containers = structs + [a for a in members if typing.get_origin(a) in (list, dict)]
    if containers:
        return containers[0]
    return members[0] if len(members) == 1 else tp


def _type_at(schema: Any, data: Any, segments: list[str | int], pick_last: bool = True) -> Any:
    """The annotation describing the value at ``segments`` (None when there is none)."""
    tp, value = schema, data
    for s in segments:
        tp = _pick(tp, value)
        if _is_struct(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(str(s))
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return None
        value = _value_at(value, [s])
    return _pick(tp, value) if pick_last else tp


def _other_words(schema: Any, data: Any, segments: list[str | int]) -> list[str]:
    """Words for the members of the union at ``segments`` that are not Literals."""
    out = []
    for tp in typing.get_args(_strip(_type_at(schema, data, segments, pick_last=False))):
        base, metas = _strip(tp), typing.get_args(tp)[1:] if typing.get_origin(tp) is Annotated else ()
        if base in (int, float):
            cond = [f"{op} {getattr(m, a):g}" for m in metas if isinstance(m, Meta)
                    for a, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
                    if getattr(m, a) is not None and abs(getattr(m, a)) < _MAX]
            out.append(" ".join([_WORDS[base.__name__], " and ".join(cond)]).strip())
    return out


def _description(schema: Any, data: Any, segments: list[str | int]) -> str:
    """The ``Meta(description=...)`` of the field at ``segments``, if it has one."""
    tp = _type_at(schema, data, segments, pick_last=False) if segments else None
    for t in [tp, *typing.get_args(tp)]:
        if typing.get_origin(t) is Annotated:
            for meta in typing.get_args(t)[1:]:
                if isinstance(meta, Meta) and meta.description:
                    return meta.description
    return ""


def _fields_at(schema: Any, data: Any, segments: list[str | int]) -> list[str]:
    tp = _type_at(schema, data, segments)
    if _is_struct(tp):
        return sorted(f for f in tp.__struct_fields__ if f != tp.__struct_config__.tag_field)
    return []


def _choices(schema: Any, data: Any, segments: list[str | int]) -> list[str]:
    if segments:
        parent = _members(_type_at(schema, data, segments[:-1], pick_last=False))
        tags = [str(a.__struct_config__.tag) for a in parent
                if _is_struct(a) and a.__struct_config__.tag_field == segments[-1]]
        if tags:  # a tagged union's tag
            return tags
    for tp in _members(_type_at(schema, data, segments, pick_last=False)):
        if typing.get_origin(tp) is Literal:
            return [str(a) for a in typing.get_args(tp)]
    return []


def _key_type(schema: Any, data: Any, segments: list[str | int]) -> Any:
    tp = _type_at(schema, data, segments)
    return typing.get_args(tp)[0] if typing.get_origin(tp) is dict else str
