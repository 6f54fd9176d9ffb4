"""``learnboard compare RUN_A RUN_B ...``: finished runs side by side, with ratios against the first."""

from __future__ import annotations

import argparse
import math

HELP = "compare finished runs side by side: error, power (measured / estimate / true), energy"
DESCRIPTION = """\
Show finished run folders side by side: board, steps, schedule, final lambda, tolerance,
C/C0 (final and tail mean), held-out test error, the board's power at the final evaluation
with its source (measured by the board's current sensor, or the device model's estimate),
the emulator's true power (n/a on hardware), and the steps and energy to reach the
tolerance, then each run's ratios against the first (RUN_A): "board power 2.1x lower".

Every run is judged against one tolerance: --tolerance, else the first run's. Energy to
reach the tolerance: the board-reported power of each telemetry frame x the board's own
mean step time (the frame's dt) x the steps the frame covers, summed from step 0 to the
first frame whose C/C0 is at or under the tolerance. It is the learning network's energy,
not the microcontroller's; a log without step times gives none (the steps still count).
Details: docs/runs.md#comparing-runs."""
EPILOG = """\
examples:
  learnboard train --name lambda0 && learnboard train --tolerance task --name controller
  learnboard compare runs/*-lambda0 runs/*-controller
  learnboard compare runs/A runs/B --json
  learnboard compare runs/A runs/B runs/C --plot compare.png --tolerance 0.05
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN_DIR", nargs="+",
                        help="run folders written by `learnboard train` (the first is the base of the ratios)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="TAU",
                        help="judge every run against this relative error (default: the first run's tolerance)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="also draw error and power against step, one colour per run (PNG)")


def _si(value: float | None, unit: str) -> str:
    """``"312.5 µW"``, ``"2.07 mJ"``; ``"n/a"`` for no value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= factor or factor == 1e-9:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def ratio(base: float | None, value: float | None) -> float | None:
    """``base / value``: above 1 when ``value`` is lower than the base's."""
    if base is None or value is None or value <= 0 or base <= 0:
        return None
    return base / value


def ratio_words(r: float | None) -> str:
    if r is None:
        return "n/a"
    if math.isclose(r, 1.0, rel_tol=5e-3):
        return "the same"
    return f"{r:.2f}x lower" if r > 1 else f"{1 / r:.2f}x higher"


RATIOS = (("power", "board power"), ("true_power", "true power"),
          ("tail_relative_error", "C/C0 (tail mean)"), ("energy_to_reach", "energy to reach τ"),
          ("steps_to_reach", "steps to reach τ"))


def _tolerance(args, facts) -> tuple[float | None, str]:
    if args.tolerance is not None:
        return args.tolerance, "--tolerance"
    for f in facts:
        if f.tolerance is not None:
            return f.tolerance, f.run
    return None, ""


def comparison(args) -> dict:
    """The comparison ``--json`` prints: the tolerance, its origin, and per run its facts,
    ``reached`` (tail mean at or under the tolerance) and ``lower_than_base`` ratios."""
    from learnboard.host.comparison import ENERGY_DEFINITION, run_facts

    from learnboard.errors import InputError

    if len(args.runs) < 2:
        raise InputError("give at least two run folders to compare (the first is the base of "
                         "the ratios)", field="RUN_DIR")
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and 0 < args.tolerance < 1):
        raise InputError(f"{args.tolerance} is not a relative error in (0, 1); give e.g. 0.05",
                         field="--tolerance")
    facts = [run_facts(p) for p in args.runs]  # each folder checked before anything is shown
    tol, origin = _tolerance(args, facts)
    for f in facts:
        f.judge(tol)  # one tolerance for all
    base = facts[0]
    runs = []
    for f in facts:
        d = f.as_dict()
        d["reached"] = (None if tol is None or f.tail_relative_error is None
                        else f.tail_relative_error <= tol)
        d["lower_than_base"] = {key: ratio(getattr(base, key), getattr(f, key)) for key, _ in RATIOS}
        runs.append(d)
    return {"tolerance": tol, "tolerance_from": origin or None, "base": base.run,
            "energy_definition": ENERGY_DEFINITION,
            "step_times": all(f.step_times for f in facts), "runs": runs, "_facts": facts}


def table(cmp: dict) -> str:
    """The side-by-side text."""
    import textwrap

    runs = cmp["runs"]
    tol = cmp["tolerance"]

    def power(d, key):
        v = _si(d[key], "W")
        return f"{v} ({d['power_source']})" if key == "power" and d[key] is not None else v

    def split(d, key):
        free, clamped = d[f"{key}_free"], d[f"{key}_clamped"]
        if free is None:
            return "n/a"
        return _si(free, "W") + (f" + {_si(clamped, 'W')}" if clamped is not None else " (one network)")

    def energy(d):
        if d["steps_to_reach"] is None:
            return "not reached"
        return _si(d["energy_to_reach"], "J") if d["step_times"] else "n/a (no step times)"

    rows = [("board", lambda d: d["board"]), ("task", lambda d: d["task"]),
            ("steps", lambda d: str(d["steps"])), ("schedule", lambda d: d["schedule"]),
            ("final λ", lambda d: _num(d["lambda"])), ("run's tolerance", lambda d: _num(d["tolerance"])),
            ("C/C0 final", lambda d: _num(d["relative_error"])),
            ("C/C0 tail mean", lambda d: _num(d["tail_relative_error"])),
            ("test error", lambda d: _num(d["test_error"])),
            ("reached τ (tail mean)", lambda d: "n/a" if d["reached"] is None else ("yes" if d["reached"] else "no")),
            ("board power", lambda d: power(d, "power")),
            ("  free + clamped", lambda d: split(d, "power")),
            ("true power", lambda d: power(d, "true_power") if d["true_power"] is not None else "n/a (hardware)"),
            ("  free + clamped", lambda d: split(d, "true_power")),
            ("steps to reach τ", lambda d: "not reached" if d["steps_to_reach"] is None else str(d["steps_to_reach"])),
            ("energy to reach τ", energy)]
    cells = [[name] + [fn(d) for d in runs] for name, fn in rows]
    # the parts' rows only when a run recorded them (summaries of earlier learnboards did not)
    cells = [c for c in cells if c[0] != "  free + clamped" or any(v != "n/a" for v in c[1:])]
    head = [""] + [d["run"] for d in runs]
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *cells]]
    lines.append("")
    lines.append(f"against {cmp['base']}:")
    for d in runs[1:]:
        parts = [f"{label} {ratio_words(d['lower_than_base'][key])}" for key, label in RATIOS]
        # a ratio is never split over two lines (textwrap breaks at ASCII spaces only)
        text = f"{d['run']}: " + ", ".join(p.replace(" ", "\u00a0") for p in parts)
        lines += [line.replace("\u00a0", " ") for line in
                  textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="    ")]
    if len({d["board"] for d in runs}) > 1:
        lines.append("note: the runs are on different boards")
    if tol is None:
        lines.append("no tolerance: no run has one; give --tolerance TAU to count steps and energy to reach it")
    else:
        origin = "given" if cmp["tolerance_from"] == "--tolerance" else f"{cmp['tolerance_from']}'s"
        lines += textwrap.wrap(f"τ = {tol:.3g} ({origin}); {cmp['energy_definition']}", 88)
    if not cmp["step_times"]:
        lines.append("note: a run's log has no step times (dt), so its energy is not given; "
                     "its steps to reach τ are")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    cmp = comparison(args)
    facts = cmp.pop("_facts")
    if args.plot:
        from learnboard.host.plots import plot_compare

        plot_compare(facts, cmp["tolerance"], args.plot)
    if args.json:
        print(json.dumps(cmp))
    else:
        print(table(cmp))
        if args.plot:
            print(f"figure: {args.plot}")
    return 0
