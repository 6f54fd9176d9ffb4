"""Side-by-side facts of run folders (``learnboard compare``) and the λ 0 reference of a run.

:func:`run_facts` reads one run folder (config, summary, telemetry) into a :class:`RunFacts`:
board, steps, schedule, final λ, tolerance, errors, the board's power with its source, the
emulator's true power, and the **energy to reach the tolerance**: the board-reported power
of each telemetry frame times the board's own mean step time (``dt``) times the steps the
frame covers, summed from step 0 up to the first frame whose C/C0 is at or under the
tolerance. It is the learning network's energy (the power the board reports), not the
microcontroller's. A log without step times (``dt`` 0 or missing) gives no energy; the steps
to reach the tolerance are still counted.

:func:`lambda0_reference` finds, in the same runs folder, a run of the same board and task
trained at λ 0 throughout: the reference the power figure draws beside a run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learnboard.errors import InputError

from .tables import current_telemetry, open_run, run_tables

ENERGY_DEFINITION = (
    "energy to reach the tolerance: the board-reported power of each telemetry frame x the "
    "board's mean step time (dt) x the steps the frame covers, summed from step 0 to the first "
    "frame with C/C0 <= tolerance (the learning network's energy, not the microcontroller's)")


@dataclass
class RunFacts:
    """What ``learnboard compare`` shows of one run (all powers in W, energy in J)."""

    run: str  # the folder's name
    path: str
    board: str
    task: str
    steps: int
    schedule: str  # "λ 0", "constant λ 0.005", "tolerance controller", ...
    lam: float | None  # final
    tolerance: float | None  # the run's own (summary), None when it had none
    relative_error: float | None  # final, by infer
    tail_relative_error: float | None  # telemetry mean over the last 10 % of steps
    test_error: float | None
    power: float | None  # what the board reports at the final evaluation
    power_source: str  # "measured" | "estimate"
    true_power: float | None  # the emulator's; None on hardware
    initial_power: float | None = None
    initial_true_power: float | None = None
    # the parts (free network; clamped twin incl. its output drive); None when not recorded
    power_free: float | None = None
    power_clamped: float | None = None
    true_power_free: float | None = None
    true_power_clamped: float | None = None
    steps_to_reach: int | None = None  # against the comparison's tolerance
    energy_to_reach: float | None = None  # J; None when not reached or no step times
    step_times: bool = True  # the log holds the board's step times (dt)
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def judge(self, tolerance: float | None) -> RunFacts:
        """Set the steps and energy to reach ``tolerance`` (None: unset them); returns self."""
        self.steps_to_reach = self.energy_to_reach = None
        s = np.asarray(self.series.get("step", []), dtype=float)
        if tolerance is not None and s.size:
            dt = np.asarray(self.series["dt"], dtype=float) if self.step_times else None
            self.steps_to_reach, self.energy_to_reach = reach(
                s, np.asarray(self.series["rel_err"], dtype=float),
                np.asarray(self.series["pwr"], dtype=float), dt, tolerance)
        return self

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("series")
        d["lambda"] = d.pop("lam")
        return d


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def describe_schedule(config: dict) -> str:
    """A short name of a run's schedule from its config.json (``"λ 0"`` when λ is 0 throughout)."""
    sched = config.get("schedule") if isinstance(config.get("schedule"), dict) else {}
    phases = [p for p in sched.get("phases", []) if isinstance(p, dict)] or [{"kind": "constant", "lam": 0.0}]
    names = []
    for p in phases:
        kind = p.get("kind", "constant")
        lam = _num(p.get("lam")) or 0.0
        if kind == "constant":
            names.append("λ 0" if lam == 0 else f"constant λ {lam:g}")
        elif kind == "ramp":
            names.append(f"ramp λ {lam:g} → {_num(p.get('lam_to')) or 0.0:g}")
        elif kind == "tolerance":
            tau = p.get("tau")
            names.append("tolerance controller" + (" (task's τ)" if tau == "task" else
                                                   f" (τ {tau:g})" if _num(tau) else ""))
        else:
            names.append(str(kind))
    return " then ".join(dict.fromkeys(names))


def is_lambda0(config: dict) -> bool:
    """True when a run's schedule holds λ at 0 throughout (no ramp, no controller)."""
    return describe_schedule(config) == "λ 0"


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} is missing; a run folder made by `learnboard train` has one "
                         "(an interrupted session writes it when it ends)", source=str(path)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{what} is damaged ({exc}); give a run folder whose session finished, "
                         "or re-run it", source=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a JSON object; the run folder is damaged", source=str(path))
    return data


def reach(steps: np.ndarray, rel: np.ndarray, pwr: np.ndarray, dt_us: np.ndarray | None,
          tolerance: float) -> tuple[int | None, float | None]:
    """``(steps, joules)`` to the first frame with C/C0 <= ``tolerance`` (see the module
    docstring); ``(None, None)`` when no frame gets there, joules None without step times."""
    hit = np.flatnonzero(np.isfinite(rel) & (rel <= tolerance))
    if hit.size == 0:
        return None, None
    j = int(hit[0])
    if dt_us is None:
        return int(steps[j]), None
    covered = np.diff(np.concatenate([[0.0], steps[: j + 1].astype(float)]))
    energy = float(np.sum(pwr[: j + 1] * dt_us[: j + 1] * 1e-6 * covered))
    return int(steps[j]), energy


def run_facts(run_dir: str | Path, tolerance: float | None = None) -> RunFacts:
    """The facts of the run folder ``run_dir``; steps and energy to reach ``tolerance``
    (default: the run's own). An InputError naming the file for a folder that is not a
    finished run folder or a damaged file."""
    rf = open_run(run_dir)
    config = _read_json(rf.config_path, "config.json")
    summary = _read_json(rf.summary_path, "summary.json")
    if not isinstance(summary.get("steps"), int):
        raise InputError("summary.json has no whole-number 'steps'; the run folder is damaged",
                         source=str(rf.summary_path), field="steps")
    t = current_telemetry(run_tables(rf.path))
    steps = t["step"].astype(float) if t else np.zeros(0)
    rel = (t["rel_err"] if "rel_err" in t else np.full(steps.size, np.nan)).astype(float) if t else steps
    pwr = t["pwr"].astype(float) if t and "pwr" in t else np.full(steps.size, np.nan)
    dt = t["dt"].astype(float) if t and "dt" in t else None
    step_times = dt is not None and dt.size > 0 and bool(np.all(np.isfinite(dt) & (dt > 0)))
    own_tol = _num(summary.get("tolerance"))
    source = "measured" if summary.get("power_source") == "measured" else "estimate"
    facts = RunFacts(
        run=rf.path.name, path=str(rf.path), board=str(summary.get("board") or config.get("board") or "?"),
        task=str(config.get("task") or "?"), steps=int(summary["steps"]),
        schedule=describe_schedule(config), lam=_num(summary.get("lambda")), tolerance=own_tol,
        relative_error=_num(summary.get("relative_error")),
        tail_relative_error=_num(summary.get("tail_relative_error")),
        test_error=_num(summary.get("test_error")), power=_num(summary.get("power")),
        power_source=source, true_power=_num(summary.get("true_power")),
        initial_power=_num(summary.get("initial_power")),
        initial_true_power=_num(summary.get("initial_true_power")), step_times=step_times,
        **{k: _num(summary.get(k)) for k in ("power_free", "power_clamped", "true_power_free",
                                              "true_power_clamped")},
        series={"step": steps.tolist(), "rel_err": rel.tolist(), "pwr": pwr.tolist(),
                "dt": (dt if dt is not None else np.zeros(steps.size)).tolist()})
    return facts.judge(tolerance if tolerance is not None else own_tol)


def lambda0_reference(run_dir: str | Path) -> Path | None:
    """A run folder beside ``run_dir`` (same runs folder) of the same board and task, trained
    at λ 0 throughout, with telemetry: the one with the same step budget if there is one, else
    the newest. None when ``run_dir`` is itself a λ 0 run or there is none (unreadable
    neighbours are passed over: the reference is optional)."""
    here = Path(run_dir).resolve()

    def config(p: Path) -> dict | None:
        try:
            c = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return c if isinstance(c, dict) else None

    mine = config(here)
    if mine is None or is_lambda0(mine):
        return None

    def budget(c: dict) -> Any:
        s = c.get("schedule")
        return (s.get("stop") or {}).get("steps") if isinstance(s, dict) else None

    found = []
    try:
        neighbours = sorted(p for p in here.parent.iterdir() if p.is_dir() and p != here)
    except OSError:
        return None
    for p in neighbours:
        c = config(p)
        if (c is None or not (p / "telemetry.msgpack").is_file() or c.get("board") != mine.get("board")
                or c.get("task") != mine.get("task") or not is_lambda0(c)):
            continue
        found.append((budget(c) == budget(mine), p.name, p))
    return max(found)[2] if found else None
