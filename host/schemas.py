"""The shape of every file the host reads back, in one place (docs/runs.md, the schema layer).

Each file kind is a :mod:`msgspec` Struct: field names, types, ranges and defaults are the
annotations; what one field says about another is the Struct's ``__post_init__`` (raising
:class:`FieldError`). :func:`convert` checks parsed data against a Struct and turns the
library's error (``Expected `int` >= 0 - at `$.step```) into the product's
:class:`~learnboard.errors.InputError`: the file, the field (``schedule.controllers.2.s0``),
the value at fault in plain words, and what to do.

Files: a run folder's ``config.json`` (:class:`RunConfig`) and checkpoints
(:class:`Checkpoint`), calibrations (:class:`Calibration`), schedule files
(:class:`ScheduleFile`), the port registry of running sessions (:class:`PortEntry`) and
of running emulators (:class:`EmulatorEntry`).
Telemetry records (:class:`TelemetryRecord`) are msgpack maps read record by record by
``learnboard.host.runlog``; their keys are open (a newer firmware adds some).
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec
from msgspec import Meta, Struct, field

from learnboard.errors import InputError

from .schema_errors import FieldError, explain

__all__ = ["FieldError"]  # raised by the Structs' __post_init__ checks

T = TypeVar("T")
_MAX = sys.float_info.max

# -- value types: the annotation says the range, the message says it in words -------------
Finite = Annotated[float, Meta(ge=-_MAX, le=_MAX)]
NonNegative = Annotated[float, Meta(ge=0, le=_MAX)]
Positive = Annotated[float, Meta(gt=0, le=_MAX)]
Fraction = Annotated[float, Meta(ge=0, le=1)]  # lambda
Nudge = Annotated[float, Meta(gt=0, le=1)]  # eta; also the tolerance controller's start
Tolerance = Annotated[float, Meta(gt=0, lt=1, description="a relative error C/C0, e.g. 0.05")]
Factor = Annotated[float, Meta(gt=1, le=_MAX, description="a factor above 1")]
Whole = Annotated[int, Meta(ge=0)]
Count = Annotated[int, Meta(ge=1)]
PhaseNumber = Annotated[str, Meta(pattern=r"^[0-9]+$", description="a phase number")]


# -- a run folder -------------------------------------------------------------------------


class ControllerState(Struct):
    """One tolerance controller's state (checkpoint ``schedule.controllers.<phase>``)."""

    lam: NonNegative
    s0: Annotated[int, Meta(ge=0, description="the step the tolerance was first reached")] | None
    factor: NonNegative | None = None  # the adaptive controller's current factor
    last: Literal[-1, 0, 1] | None = None  # ... and its last move
    start: Positive | None = None  # ... and the constants it resolved at the start
    every: Count | None = None
    lam_max: Fraction | None = None
    recent: list[NonNegative] | None = None


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


class ScheduleRecord(Struct, forbid_unknown_fields=True):
    """config.json's ``schedule``: its values are checked as a schedule file's
    (learnboard.host.session.TrainConfig.from_dict)."""

    phases: list[dict[str, Any]] = field(default_factory=lambda: [{"kind": "constant"}])
    init: Any = "uniform"
    chunk: Any = 50
    stop: dict[str, Any] | None = None
    seed: Any = 0
    null_offset_every: Any = 0


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

PhaseKind = Literal["constant", "ramp", "tolerance"]
Init = Literal["low", "uniform", "random"]  # the edges' initial state
PHASE_KINDS, INITS = typing.get_args(PhaseKind), typing.get_args(Init)
TOLERANCE_KEYS = ("tau", "controller", "target", "start", "every", "up", "down")


class PhaseFile(Struct, forbid_unknown_fields=True):
    """A ``[[phase]]`` table; None is "not given" (TOML has no null)."""

    kind: PhaseKind = "constant"
    steps: Count | None = None
    lam: Fraction | None = None
    lam_to: Fraction | None = None
    tau: Tolerance | Literal["task"] | None = None
    controller: Literal["adaptive", "paper"] | None = None
    target: Nudge | None = None  # adaptive: the fraction of tau aimed at
    start: Nudge | None = None
    every: Count | None = None
    up: Factor | None = None
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
            if self.controller != "paper":
                for key in ("down",):
                    if getattr(self, key) is not None:
                        raise FieldError(key, "only the paper's controller takes down; add "
                                         "controller = \"paper\" or drop it")
            elif self.target is not None:
                raise FieldError("target", "only the adaptive controller takes target; drop it "
                                 "or drop controller = \"paper\"")
        else:
            for key in TOLERANCE_KEYS:
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
    init: Init | None = None  # None: the board's ([learning] init)
    chunk: Count = 50
    seed: int = 0
    null_offset_every: Annotated[int, Meta(ge=0, description=(
        "steps between the board's null-offset measurements, an integer >= 0 (0: off)"))] | None = None
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


# -- telemetry records (msgpack maps in telemetry.msgpack) ------------------------------------


class TelemetryRecord(Struct):
    """A ``tlm`` record: the fields the host reads back (export, plot, --resume); the board's
    other telemetry fields pass unchecked (a newer firmware may add some)."""

    i: Whole
    step: Whole
    k: list[float] | None = None
    v: list[float] | None = None


# -- the port registries ---------------------------------------------------------------------


class EmulatorEntry(Struct):
    """``<runtime dir>/learnboard/emulated/<pid>.json``: a running ``learnboard emulate``."""

    port: str
    board: str
    pid: int
    previous: list[str] = field(default_factory=list)  # its earlier ports (a reset drops one)
    moved_at: float = 0.0  # when it left its previous port (0: never)
    at: float = 0.0  # when it took ``port`` (0: written by an older version)
    truth: str | None = None  # Unix socket of its truth probe (learnboard.host.truth)


class PortEntry(Struct):
    """``<runtime dir>/learnboard/ports/<port>.json``: the process that holds a port (its
    lock, ``<port>.lock`` beside it, says whether it still does)."""

    pid: int
    run_dir: str = ""  # the run folder of a training session; "" for other commands
    port: str = ""
    since: float = 0.0
    command: str = ""  # e.g. "learnboard train"


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
        fld, message = explain(exc, data, schema)
        raise InputError(f"{message}; {hint}" if hint else message, source=source,
                         field=fld or None) from None


def try_convert(data: Any, schema: type[T]) -> T | None:
    """``data`` as ``schema``, or None when it does not fit (for files that are optional)."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError:
        return None
