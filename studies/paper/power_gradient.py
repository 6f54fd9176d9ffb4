"""The report's power-gradient section: the transistor rule's local power term against the
exact gradient of the physical power (:mod:`learnboard.engine.power_gradient`).

On the nominal transistor board (``BoardEngine(model="ideal")``: exact volts, gates moved
by the rule's volts) two things are measured:

* along training with the local rule, per recorded step: the cosine and the sign
  agreement between the local term ``<(dV^F)^2>`` and the exact ``dP_free/dVg`` and
  ``dP_total/dVg`` over the gates (and over the gates above the floor only);
* the power reached at equal error: the local rule at a grid of λ against the same rule
  whose power term is the exact gradient scaled to the local term's norm (``exact``: of
  ``P_free``; ``exact-total``: of ``P_free + P_clamped``), compared by interpolating the
  local runs' (C/C0, P) curve at each exact run's C/C0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from learnboard.studies.paper.analysis import interp_power

from learnboard.boards import load_board
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_task
from learnboard.engine.config import LearningConfig

LEARNING = {"alpha": 2.0, "eta": 0.5}  # the report's board runs (plan.BOARD_LEARNING)
MODELS = ("ideal", "board")  # the nominal board, then the emulated board's twin
NAMES = {"ideal": "power_gradient", "board": "power_gradient_board"}  # figure / table names


@dataclass
class GradientPlan:
    """Grid of the section: steps, λ values, power terms, task seeds, recording interval."""

    steps: int = 1000
    lams: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
    terms: list[str] = field(default_factory=lambda: ["local", "exact", "exact-total"])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    points: int = 50  # recorded steps per run
    # "ideal" (nominal parts, exact volts) or "board" (the emulated board of each seed:
    # device spread, twin networks, converters, the firmware's pulses)
    model: str = "ideal"

    @classmethod
    def of(cls, quick: bool, steps: int | None = None, model: str = "ideal") -> GradientPlan:
        """The report's grid (``quick``: one task, four λ, no ``exact-total``)."""
        if quick:
            return cls(steps=steps or 300, lams=[0.02, 0.05, 0.1, 0.2],
                       terms=["local", "exact"], seeds=[0], model=model)
        return cls(steps=steps or 1000, model=model)


@dataclass
class GradientStudy:
    """Rows per run, the equal-error comparison, the local runs' histories, CPU seconds."""

    runs: list[dict]
    equal_error: list[dict]
    histories: dict[str, dict]
    seconds: float


def _median(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else math.nan


def run_study(board_name: str, plan: GradientPlan) -> GradientStudy:
    """Train every (seed, λ, term) of ``plan`` on ``board_name`` and tabulate."""
    t0 = time.process_time()
    board = load_board(board_name)
    runs, hists = [], {}
    for seed in plan.seeds:
        data = board_task(board, seed)
        for lam in [0.0, *plan.lams]:
            for term in plan.terms if lam > 0 else ["local"]:
                # the board model's seed is also its devices' (as `learnboard sim --seed`)
                eng = BoardEngine(board, data, LearningConfig(lam=lam, **LEARNING),
                                  model=plan.model, seed=seed if plan.model == "board" else None,
                                  power_term=term, track_gradient=True)
                res = eng.train(eng.initial_state(), plan.steps,
                                record_every=max(1, plan.steps // plan.points))
                h = res.history
                pf, pc = float(h["power_watts"][-1]), float(h["power_clamped_watts"][-1])
                runs.append({"seed": seed, "lam": lam, "term": term,
                             "rel_error": res.relative_error, "power_free_uW": pf * 1e6,
                             "power_clamped_uW": pc * 1e6, "power_total_uW": (pf + pc) * 1e6,
                             "at_floor": float(h["at_floor"][-1]),
                             "cos_free_median": _median(h["cos_free"]),
                             "cos_free_min": float(np.nanmin(h["cos_free"])),
                             "cos_total_median": _median(h["cos_total"]),
                             "sign_free_median": _median(h["sign_free"]),
                             "sign_free_min": float(np.nanmin(h["sign_free"])),
                             "sign_total_min": float(np.nanmin(h["sign_total"])),
                             "cos_above_floor_median": _median(h["cos_free_above_floor"]),
                             "cos_above_floor_min": float(np.nanmin(h["cos_free_above_floor"]))})
                if term == "local" and seed == plan.seeds[0]:  # one task's curves in the figure
                    hists[f"seed {seed}, λ {lam:g}"] = h
    return GradientStudy(runs, _equal_error(runs), hists, time.process_time() - t0)


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower-left frontier of (C/C0, P) points: those no other point beats in both
    (short runs at several λ are not monotone in λ; the frontier is what the rule reaches)."""
    out: list[tuple[float, float]] = []
    for c, p in sorted(points):
        if not out or p < out[-1][1]:
            out.append((c, p))
    return out


def _equal_error(runs: list[dict]) -> list[dict]:
    """Each exact run against the local rule's power at its C/C0: log-log interpolation on
    the frontier of the local runs (every λ, 0 included) of the same task; NaN outside
    its error range."""
    out = []
    for r in runs:
        if r["term"] == "local":
            continue
        local = [x for x in runs if x["seed"] == r["seed"] and x["term"] == "local"]
        row = {"seed": r["seed"], "lam": r["lam"], "term": r["term"], "rel_error": r["rel_error"]}
        for key in ("power_free_uW", "power_total_uW"):
            p_local = interp_power(front([(x["rel_error"], x[key]) for x in local]),
                                   r["rel_error"])
            row[f"{key}_exact"] = r[key]
            row[f"{key}_local"] = p_local
            row[f"{key.replace('_uW', '')}_ratio"] = r[key] / p_local if p_local == p_local else math.nan
        out.append(row)
    return out


def markdown(study: GradientStudy, plan: GradientPlan, board: str, md_table) -> list[str]:
    """The section's text and tables."""
    ratios = [r["power_free_ratio"] for r in study.equal_error if r["term"] == "exact"
              and r["power_free_ratio"] == r["power_free_ratio"]]
    local = [r for r in study.runs if r["term"] == "local"]
    summary = (f"Over the local runs with λ > 0 the median cosine between the local term and "
               f"the exact dP_free/dVg is {_median([r['cos_free_median'] for r in local if r['lam'] > 0]):.3f} "
               f"(lowest recorded {min(r['cos_free_min'] for r in local):.3f}); over the gates "
               f"above the floor {_median([r['cos_above_floor_median'] for r in local if r['lam'] > 0]):.3f} "
               f"(lowest {min(r['cos_above_floor_min'] for r in local):.3f}); the lowest sign "
               f"agreement {min(r['sign_free_min'] for r in local):.2f}. ")
    if ratios:
        summary += (f"At equal error the exact term's free power is {min(ratios):.2f}–"
                    f"{max(ratios):.2f}× the local rule's (median {_median(ratios):.2f}; "
                    f"{len(ratios)} exact runs inside the local curve's error range).")
    if plan.model == "board":
        return _board_markdown(study, plan, board, md_table, summary)
    return [
        f"## Transistor power gradient: the local rule against the exact gradient ({board})\n",
        "![power gradient](power_gradient.png)\n",
        f"The nominal board (`BoardEngine(model='ideal')`, exact volts), {plan.steps} steps, "
        f"alpha {LEARNING['alpha']:g}, eta {LEARNING['eta']:g}, the profile's task (seeds "
        f"{', '.join(map(str, plan.seeds))}). The exact gradient of the physical power with "
        "respect to the gates comes from one adjoint solve of the Newton system per example "
        "(`learnboard.physics.sensitivity`; docs/physics.md, \"The power gradient\"): "
        "P_free (the free state), P_total (free plus clamped state, the clamp's drive and its "
        "dependence on the free outputs included). *local*: the rule's λ term <(ΔV^F)²>; "
        "*exact* / *exact-total*: the same rule with the exact dP_free/dVg (dP_total/dVg) "
        "in its place, scaled per step to the local term's norm (`learnboard sim --board "
        "gen2-clln --board-model ideal --power-term exact`). The rule's λ term lowers the "
        "free network's power — the learned solution's — and the clamped state's with it: "
        "cos(local, dP_total) tracks cos(local, dP_free). Powers are the final step's "
        f"(not judged for a steady state). {summary} Tables: `power_gradient_runs.csv`, "
        f"`power_gradient_equal_error.csv`; computed in {study.seconds:.1f} s CPU.\n",
        *_tables(study, md_table),
    ]


def _tables(study: GradientStudy, md_table) -> list[str]:
    """The runs' table and the equal-error comparison."""
    return [
        md_table(study.runs, [("seed", "seed"), ("lam", "λ"), ("term", "power term"),
                              ("rel_error", "C/C0"), ("power_free_uW", "P_free (µW)"),
                              ("power_total_uW", "P_total (µW)"), ("at_floor", "gates at floor"),
                              ("cos_free_median", "cos free (median)"),
                              ("cos_free_min", "cos free (min)"),
                              ("cos_total_median", "cos total (median)"),
                              ("sign_free_median", "sign agreement (median)"),
                              ("sign_free_min", "sign agreement (min)"),
                              ("cos_above_floor_median", "cos above floor (median)"),
                              ("cos_above_floor_min", "cos above floor (min)")]),
        "Power at equal error: the local rule's P at the exact run's C/C0, interpolated "
        "(log-log) on the frontier of the local runs of the same task (every λ; a run no "
        "other beats in both error and power). Below 1: the exact gradient reaches that "
        "error with less power.\n",
        md_table(study.equal_error, [("seed", "seed"), ("lam", "λ"), ("term", "power term"),
                                     ("rel_error", "C/C0"),
                                     ("power_free_uW_exact", "P_free exact (µW)"),
                                     ("power_free_uW_local", "P_free local (µW)"),
                                     ("power_free_ratio", "ratio"),
                                     ("power_total_uW_exact", "P_total exact (µW)"),
                                     ("power_total_uW_local", "P_total local (µW)"),
                                     ("power_total_ratio", "ratio")]),
    ]


def _board_markdown(study: GradientStudy, plan: GradientPlan, board: str, md_table,
                    summary: str) -> list[str]:
    """The same measurement on the board twin (``model="board"``)."""
    return [
        f"### The same on the emulated board ({board}, `BoardEngine(model='board')`)\n",
        "![power gradient, board twin](power_gradient_board.png)\n",
        f"The twin of the emulated board of each seed (its device spread on both networks, "
        "the converters' codes, the firmware's gate pulses, leak and keeping; the task of "
        f"the same seed), {plan.steps} steps, alpha {LEARNING['alpha']:g}, eta "
        f"{LEARNING['eta']:g}, seeds {', '.join(map(str, plan.seeds))}. The exact gradient is "
        "that of the powers the board's own devices dissipate: P_free on network 0 at its "
        "gates, P_clamped on network 1 at its own (drifted) gates with its own devices, a "
        "gate's change moving both; the clamp, a code, follows the free outputs along its "
        "envelope (docs/physics.md, \"The power gradient on the board twin\"). The local "
        "term is what the firmware computes, from ADC codes (`learnboard sim --board "
        f"{board} --alpha {LEARNING['alpha']:g} --lam 0.05 --power-term exact`). {summary} Tables: `power_gradient_board_runs.csv`, "
        f"`power_gradient_board_equal_error.csv`; computed in {study.seconds:.1f} s CPU.\n",
        *_tables(study, md_table),
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m learnboard.studies.paper.power_gradient [--quick] [--board B] OUT``: the
    section alone (what ``learnboard paper`` runs for it): OUT/power_gradient.md, and per
    model (nominal board, board twin) the figure and the two tables."""
    import argparse
    from pathlib import Path

    from learnboard.studies.paper import figures as fg
    from learnboard.studies.paper.report import md_table, write_table

    p = argparse.ArgumentParser(prog="python -m learnboard.studies.paper.power_gradient",
                                description=main.__doc__)
    p.add_argument("out", help="output folder, e.g. /tmp/power-gradient")
    p.add_argument("--quick", action="store_true", help="the --quick grid of learnboard paper")
    p.add_argument("--board", default="gen2-clln", help="board profile (default %(default)s)")
    p.add_argument("--model", choices=(*MODELS, "both"), default="both",
                   help="the nominal board (ideal), the board twin (board) or both "
                        "(default %(default)s, as learnboard paper)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="task (and, on the board twin, device) seeds; default the grid's")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for model in MODELS if args.model == "both" else (args.model,):
        gplan = GradientPlan.of(args.quick, model=model)
        if args.seeds:
            gplan.seeds = [int(x) for x in args.seeds.split(",")]
        study = run_study(args.board, gplan)
        name = NAMES[model]
        fg.power_gradient(study.histories, study.runs, out / f"{name}.png")
        write_table(out / f"{name}_runs.csv", study.runs)
        write_table(out / f"{name}_equal_error.csv", study.equal_error)
        parts += markdown(study, gplan, args.board, md_table)
    text = "\n".join(parts)
    (out / "power_gradient.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
