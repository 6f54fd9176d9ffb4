"""``learnboard paper``: run the plan's sweeps, then write tables, figures and report.md."""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from learnboard.studies.paper import analysis as an
from learnboard.studies.paper import figures as fg
from learnboard.studies.paper import screening as sc
from learnboard.studies.paper.compare import compare
from learnboard.studies.paper.plan import Plan
from learnboard.studies.sweep import expand, load_history, run_sweep

from learnboard.engine.steady import FLOOR as STEADY_FLOOR

REFERENCE_GUIDE = 5.5e6  # reference results: C/C0 ≈ 5.5e6 · lambda² on r1 at 1e5 steps


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the sweep's worker
    processes are joined when each sweep ends, so a section's workers are counted)."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    """Wall and CPU seconds per report section (``lap`` closes the section since the last)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        self._wall0, self._cpu0 = self._wall, self._cpu

    def lap(self, section: str, runs: int | None = None) -> None:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        self.rows.append({"section": section, "runs": runs, "wall_s": wall - self._wall,
                          "cpu_s": cpu - self._cpu})
        self._wall, self._cpu = wall, cpu

    @property
    def wall(self) -> float:
        return time.perf_counter() - self._wall0

    @property
    def cpu(self) -> float:
        return _cpu_seconds() - self._cpu0


@dataclass
class Report:
    """What :func:`run_paper` wrote: folder, comparison and findings rows, timing."""

    out: Path
    comparison: list[dict]
    findings: list[dict]
    seconds: float
    runs: int
    failed: int
    cpu_seconds: float = math.nan
    counts: dict | None = None  # runs per kind: sweep, small_alpha, power_gradient, bias
    timing: list[dict] = field(default_factory=list)  # Clock rows: section, runs, wall_s, cpu_s

    @property
    def markdown(self) -> Path:
        return self.out / "report.md"


def write_table(path: Path, rows: list[dict]) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r[c] for c in cols])
    return path


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "pass" if v else "FAIL"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _unjudged(row: dict) -> str:
    """A result column's text for a row without a verdict: not run, or run but not judged."""
    return "not run" if row.get("measured") is None and "measured" in row else "not judged"


def md_table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(h for _, h in cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(k)) if k != "pass" else
                                     (_unjudged(r) if r.get(k) is None else _fmt(r[k]))
                                     for k, _ in cols) + " |\n" for r in rows)
    return head + body


def run_paper(plan: Plan, out: str | Path, *, workers: int | None = None, scheduler=None,
              progress: bool = True, command: str = "learnboard paper") -> Report:
    """Run every sweep of ``plan`` into ``out/sweep`` and write the report folder ``out``.

    The learning-bias study (one long serial chain of board-twin runs) runs in its own
    process from the start, beside the sweeps: it fills the cores the sweep's tails, the
    representability checks and the figures leave idle, instead of adding its whole
    time at the end. It is one process more than ``workers`` (which sizes the sweeps).
    """
    import multiprocessing

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not plan.board:
        return _run_paper(plan, out, None, workers=workers, scheduler=scheduler,
                          progress=progress, command=command)
    # spawn with one BLAS thread, as the sweep's workers; terminated on any error
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        job = pool.apply_async(_bias_section, (plan.quick, plan.bias_steps, str(out)))
        return _run_paper(plan, out, job, workers=workers, scheduler=scheduler,
                          progress=progress, command=command, pool=pool)
    finally:
        pool.terminate()
        pool.join()


def _run_paper(plan: Plan, out: Path, bias_job, *, workers: int | None, scheduler,
               progress: bool, command: str, pool=None) -> Report:
    clock = Clock()
    sweep_dir = out / "sweep"
    # stage 1: which random tasks can each network learn at all (lambda 0)?
    screen_runs = expand(plan.screen_spec())
    screen = run_sweep(screen_runs, sweep_dir, workers=workers,
                       scheduler=scheduler, progress=progress, label="paper: screening tasks")
    clock.lap("screening runs (λ = 0)", screen.ran)
    chosen: dict[str, list[int]] = {}
    for r in screen.rows:
        if r["status"] == "ok" and r["relative_error"] < plan.screen_below:
            chosen.setdefault(r["network"], []).append(r["seed"])
    if not chosen:
        from learnboard.errors import LearnboardError

        raise LearnboardError("no network learned any of the screened tasks at lambda 0; "
                              "raise the steps or the number of candidate seeds")
    # stage 2: every part of the report on the learnable tasks
    parts = {name: expand(spec) for name, spec in plan.specs(chosen).items()}
    all_runs = [r for runs in parts.values() for r in runs]
    # the slowest runs first (board solves, controller runs recording every step), so the
    # last minutes are not one worker finishing a long run while the others idle
    all_runs.sort(key=lambda r: (r["network"]["kind"] not in ("emulate", "board"),
                                 r["network"]["kind"] != "emulate", r["tolerance"] is None))
    res = run_sweep(all_runs, sweep_dir, workers=workers, scheduler=scheduler,
                    progress=progress, label="paper")
    clock.lap("sweep: every section's runs", res.ran)
    parts_time = _part_seconds(parts, res.rows)
    # the tasks the filter dropped stay in the report, with a representability check
    screened = sc.screening_rows(screen_runs, screen.rows, plan.screen_below, out,
                                 check=plan.inverse_check, random_starts=plan.inverse_starts,
                                 more_starts=plan.inverse_more_starts,
                                 maxiter=plan.inverse_maxiter, workers=workers)
    clock.lap("screening: representability checks",
              sum(1 for r in screened if "verdict" in r))
    by_id = {r["id"]: r for r in res.rows}
    computed = screen.ran + res.ran
    total = len({r["id"] for r in screen.rows} | set(by_id))

    def rows(name: str) -> list[dict]:
        return [by_id[r["id"]] for r in parts.get(name, []) if r["id"] in by_id]

    labels = [n["label"] for n in plan.networks if n["label"] in chosen]
    first_seed = {net: seeds[0] for net, seeds in chosen.items()}
    everything = res.rows
    tables: dict[str, list[dict]] = {}
    figs: dict[str, Path] = {}

    # 1. error and power against lambda
    lam_rows = an.lambda_table(rows("scan"), labels, plan.lams, plan.steps)
    tables["lambda_scan"] = lam_rows
    guide = REFERENCE_GUIDE if plan.reference_rows else _fit_guide(lam_rows)
    figs["error_power_vs_lambda"] = fg.error_power_vs_lambda(
        lam_rows, labels, guide, out / "fig1_error_power_vs_lambda.png")
    # 2. initial conditions
    ic_nets = labels[: plan.ic_networks]
    ic_rows = an.initial_table(rows("initial") + rows("scan") + rows("reference_k0"), ic_nets,
                               plan.ic_lams, plan.steps, first_seed)
    tables["initial_conditions"] = ic_rows
    figs["initial_conditions"] = fg.initial_conditions(ic_rows, out / "fig2_initial_conditions.png")
    # 3. trade-off
    scan_ok = [r for r in rows("scan") if r["status"] == "ok"]
    figs["tradeoff"] = fg.tradeoff(lam_rows, scan_ok, out / "fig3_tradeoff.png")
    # 4. tolerance controller
    tol_nets = labels[: plan.tol_networks]
    fixed_rows = rows("scan") + rows("tol_fixed")
    tol_rows = an.tolerance_table(rows("tolerance"), tol_nets, plan.taus, plan.steps, fixed_rows,
                                  first_seed)
    curves = {net: an.fixed_curve(fixed_rows, net, first_seed.get(net), plan.steps)
              for net in tol_nets}
    tables["tolerance"] = tol_rows
    tau_hist = 1e-3 if any(math.isclose(t, 1e-3) for t in plan.taus) else plan.taus[0]
    hist_run = next((r for r in parts["tolerance"] if r["network"]["label"] == labels[0]
                     and math.isclose(r["tolerance"], tau_hist)), None)
    history = load_history(sweep_dir, hist_run["id"]) if hist_run else None
    figs["tolerance"] = fg.tolerance(curves, tol_rows, tol_nets, history, tau_hist,
                                     out / "fig4_tolerance_controller.png")
    # 5. board profile (transistor network), nominal and with device imperfections
    board_rows: list[dict] = []
    if plan.board:
        board_rows = _board_table(rows("board") + rows("board_low") + rows("emulated"))
        tables["board"] = board_rows
        hist = {}
        for r in parts["board"] + parts.get("board_low", []) + parts.get("emulated", []):
            if r["task"]["seed"] == 0 and (r["lam"] in (0.0, 0.05) or r["init"] == "low"):
                h = load_history(sweep_dir, r["id"])
                if h:
                    start = "low gates" if r["init"] == "low" else f"λ={r['lam']:g}"
                    # a session's telemetry power is what the firmware computes from its
                    # readings; the table's emulated power is the emulator's true Σ I ΔV
                    note = " (board-reported)" if r["network"]["kind"] == "emulate" else ""
                    hist[f"{r['network']['label']}, {start}{note}"] = h
        figs["board"] = fg.board(board_rows, hist, out / "fig5_board_gen2.png")
    # 6. noisy targets
    noise_rows = [r for r in rows("noise") if r["status"] == "ok"]
    tables["noise"] = [{k: r[k] for k in ("network", "noise", "lam", "relative_error",
                                          "clean_relative_error", "power", "energy")}
                       for r in noise_rows]
    figs["noise"] = fg.noise(noise_rows, out / "fig6_noisy_targets.png")
    # 7. energy during training
    ehist = {}
    for r in parts["initial"]:
        if r["network"]["label"] == labels[0] and r["lam"] == 0:
            h = load_history(sweep_dir, r["id"])
            if h:
                ehist[an.init_label({"init": r["init"], "k0": r["k0"]})] = h
    figs["energy"] = fg.energy(ehist, ic_rows, out / "fig7_training_energy.png")
    clock.lap("tables and figures 1-7")

    strong = _strong_points(res.rows, parts.get("strong", []))
    tables["strong_lambda"] = _strong_table(strong)
    spread = {p["point"]["lam"]: p for p in strong}
    grad_lines = _power_gradient_section(plan, out, tables, figs)
    counts = {"sweep": total, "power_gradient": len(tables.get("power_gradient_runs", []))}
    clock.lap("power gradient (in-process runs)", counts["power_gradient"] or None)
    alpha_lines = _small_alpha_section(plan, chosen, out, tables, figs, workers=workers,
                                       scheduler=scheduler, progress=progress)
    counts["small_alpha"] = sum(r["runs"] + r["failed"] for r in tables.get("small_alpha", []))
    clock.lap("small-α check", counts["small_alpha"] or None)
    bias_lines = bias_job.get() if bias_job is not None else []
    if pool is not None:
        pool.close()
        pool.join()  # a joined child: its CPU time counts in this lap and the report's
    counts["bias"] = _bias_runs(out) if bias_lines else 0
    clock.lap("learning bias (own process from the start; wall: the wait for it at the end)",
              counts["bias"] or None)
    verdicts = _alpha_verdicts(tables.get("small_alpha", []))
    comparison = (compare(everything, labels[0], spread, alpha=verdicts)
                  if plan.reference_rows else [])
    findings = _findings(plan, lam_rows, ic_rows, tol_rows, board_rows, noise_rows, labels)
    tables["reference_comparison"] = comparison
    tables["screened_tasks"] = screened
    tables["findings"] = findings
    for name, t in tables.items():
        if t:
            write_table(out / f"{name}.csv", t)
    failed = res.failed + screen.failed + sum(r["failed"] for r in tables.get("small_alpha", []))
    clock.lap("comparison, findings, tables")
    # the report's time is measured before its text is written (the text states it)
    report = Report(out, comparison, findings, clock.wall, sum(counts.values()), failed,
                    clock.cpu, counts, clock.rows + parts_time)
    write_table(out / "timing.csv", report.timing)
    _write_markdown(report, plan, computed, tables, figs, command, grad_lines, alpha_lines,
                    bias_lines)
    return report


def _part_seconds(parts: dict[str, list[dict]], rows: list[dict]) -> list[dict]:
    """The sweep's time by part of the report: Σ of its runs' own seconds in the workers
    (runs shared by two parts count in the first), for the timing table."""
    secs = {r["id"]: r.get("seconds") for r in rows if r.get("status") == "ok"}
    seen: set[str] = set()
    out = []
    for name, runs in parts.items():
        mine = [r["id"] for r in runs if r["id"] in secs and r["id"] not in seen]
        seen.update(mine)
        total = sum(float(secs[i]) for i in mine if secs[i] not in (None, ""))
        if mine:
            out.append({"section": f"sweep part {name} (Σ run seconds in the workers)",
                        "runs": len(mine), "wall_s": None, "cpu_s": None, "run_s": total})
    return out


def _alpha_verdicts(rows: list[dict]) -> dict[float, tuple[str, str]]:
    """λ -> (verdict, its text) of the report's small-α check, for the comparison table."""
    from learnboard.studies.paper.small_alpha import verdict_text

    def text(r: dict) -> str:
        first = min((x for x in rows if x["lam"] == r["lam"]), key=lambda x: x["level"])
        # the reference rows are 1e5-step runs at α 0.5: say when the check started elsewhere
        note = "" if first["steps"] == 100_000 else f" (checked from {first['steps']:g} steps)"
        return verdict_text(r["verdict"], r["verdict_alpha"]) + note

    return {r["lam"]: (r["verdict"], text(r)) for r in rows}


def _bias_runs(out: Path) -> int:
    """How many twin runs the learning-bias study trained (from its ``bias.json``)."""
    import json

    try:
        res = json.loads((out / "bias.json").read_text())
    except (OSError, ValueError):
        return 0
    floors = sum(sum(1 for k in ("plain", "offset", "eta1") if k in r)
                 for r in res.get("floor", []) + res.get("floor_lam", []))
    return floors + len(res.get("cycles", [])) + len(res.get("memory", []))


def _strong_points(rows: list[dict], runs: list[dict]) -> list[dict]:
    """The replica summaries of the strong-lambda runs, one per lambda."""
    from learnboard.studies.sweep.execute import replica_points

    ids = {r["id"] for r in runs}
    return sorted(replica_points([r for r in rows if r["id"] in ids]),
                  key=lambda p: p["point"]["lam"])


def _modes_text(found: list[dict]) -> str:
    return "; ".join(f"{m['centre']:.3g} ({m['count']})" for m in found) or "–"


def _strong_table(points: list[dict]) -> list[dict]:
    out = []
    for p in points:
        med, iqr, rng = p["median"], p["iqr"], p["range"]
        if "relative_error" not in med:
            continue
        out.append({"network": p["point"]["network"], "lam": p["point"]["lam"],
                    "runs": len(p["replicas"]) - p["failed"], "perturb": p["point"]["perturb"],
                    "rel_error_median": med["relative_error"],
                    "rel_error_q25": iqr["relative_error"][0],
                    "rel_error_q75": iqr["relative_error"][1],
                    "rel_error_min": rng["relative_error"][0],
                    "rel_error_max": rng["relative_error"][1],
                    "rel_error_modes": _modes_text(p["modes"].get("relative_error", [])),
                    "power_median": med["power"], "power_q25": iqr["power"][0],
                    "power_q75": iqr["power"][1], "power_min": rng["power"][0],
                    "power_max": rng["power"][1],
                    "power_modes": _modes_text(p["modes"].get("power", [])),
                    "frac_at_min_median": med.get("frac_at_min"),
                    "steady_runs": p["steady_runs"]})
    return out


def _strong_markdown(rows: list[dict]) -> list[str]:
    """The report section of the strong-lambda distributions (empty without them)."""
    if not rows:
        return []
    shown = [{**r, "c_iqr": f"{r['rel_error_q25']:.3g}–{r['rel_error_q75']:.3g}",
              "c_range": f"{r['rel_error_min']:.3g}–{r['rel_error_max']:.3g}",
              "p_range": f"{r['power_min']:.3g}–{r['power_max']:.3g}",
              "steady": f"{r['steady_runs']}/{r['runs']}"} for r in rows]
    return [
        "## Strong λ as distributions\n",
        f"At strong λ many edges sit at k_min and a last-bit difference grows into a different "
        f"run: each λ below is {rows[0]['runs']} runs of {rows[0]['network']}'s first task, "
        f"each from k0 perturbed by ±{rows[0]['perturb']:g} (relative, seeded per run). Modes: "
        "groups of the sorted log values split at gaps wider than 8× the median gap "
        "(docs/engine.md, \"Replicas\"). The comparison with the reference results judges "
        "these rows by this spread. Table: `strong_lambda.csv`.\n",
        md_table(shown, [("lam", "λ"), ("rel_error_median", "median C/C0"), ("c_iqr", "IQR"),
                         ("c_range", "range"), ("rel_error_modes", "modes (runs)"),
                         ("power_median", "median P"), ("p_range", "P range"),
                         ("power_modes", "P modes"), ("frac_at_min_median", "at k_min"),
                         ("steady", "steady")]),
    ]
def _small_alpha_section(plan: Plan, chosen: dict[str, list[int]], out: Path, tables: dict,
                         figs: dict, **sweep) -> list[str]:
    """The small-α check of the strong-λ distributions on the strong-λ runs' network and
    task (:mod:`learnboard.studies.paper.small_alpha`; its runs go to ``out/small_alpha``)."""
    strong = plan.specs(chosen).get("strong")
    if not plan.small_alpha or strong is None:
        return []
    from learnboard.studies.paper import small_alpha as sa

    ap = sa.AlphaPlan.of(plan.quick, plan.steps, plan.strong_perturb)
    network = strong["networks"][0]
    rows = sa.run_check(network, ap, out / "small_alpha", **sweep)
    tables["small_alpha"] = rows
    figs["small_alpha"] = sa.figure(rows, out / "fig9_small_alpha.png")
    return sa.markdown(rows, ap, network["label"], md_table)


def _power_gradient_section(plan: Plan, out: Path, tables: dict, figs: dict) -> list[str]:
    """The transistor rule's local power term against the exact power gradient (its own
    in-process runs on the nominal board and on the board twin;
    :mod:`learnboard.studies.paper.power_gradient`)."""
    if not plan.board:
        return []
    # imported here: `python -m learnboard.studies.paper.power_gradient` runs it alone
    from learnboard.studies.paper import power_gradient as pgs

    lines = []
    for model in pgs.MODELS:  # the nominal board, then the emulated board's twin
        gplan = pgs.GradientPlan.of(plan.quick, plan.gradient_steps, model=model)
        study = pgs.run_study(plan.board, gplan)
        name = pgs.NAMES[model]
        tables[f"{name}_runs"] = study.runs
        tables[f"{name}_equal_error"] = study.equal_error
        figs[name] = fg.power_gradient(study.histories, study.runs, out / f"{name}.png")
        lines += pgs.markdown(study, gplan, plan.board, md_table)
    return lines


def _fit_guide(lam_rows: list[dict]) -> float:
    pts = [t["rel_error_median"] / t["lam"] ** 2 for t in lam_rows
           if t["network"] == "all" and 0 < t["lam"] <= 1e-9 and t["rel_error_median"] > 0]
    return float(np.median(pts)) if pts else 0.0


def _board_table(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["network"], r["init"], r["lam"]), []).append(r)
    out = []
    for (net, init, lam), sel in groups.items():
        c, p, e = (an.stats(r.get(k) for r in sel) for k in ("relative_error", "power_watts",
                                                         "energy_watts"))
        p0 = an.stats(r.get("initial_power_watts") for r in sel)[0]
        out.append({"network": net, "init": init, "lam": lam, "runs": len(sel),
                    "rel_error_median": c[0], "rel_error_min": c[1], "rel_error_max": c[2],
                    "power_uW_median": p[0] * 1e6, "initial_power_uW": p0 * 1e6,
                    "energy_uW_steps": e[0] * 1e6,
                    "newton_iterations_mean": an.stats(r.get("newton_iterations_mean") for r in sel)[0],
                    **an.verdict_counts(sel)})
    return sorted(out, key=lambda r: (r["network"], r["init"] != "uniform", r["lam"]))


def _median_at(lam_rows, lam, key="rel_error_median", net="all"):
    for t in lam_rows:
        if t["network"] == net and (math.isclose(t["lam"], lam) if lam else t["lam"] == 0):
            return t[key]
    return None


def _lambda_checks(add, lam_rows: list[dict], networks: list[str] = ()) -> None:
    """Error grows and power falls with λ, checked over every λ of the scan (not a sample):
    on the median over all runs, then on each network's own median over its tasks (a
    network whose error falls between two λ is not hidden by the others); each λ where the
    error falls (or the power rises) is named in the finding."""
    lams = sorted({t["lam"] for t in lam_rows if t["network"] == "all"})
    errs = [_median_at(lam_rows, x) for x in lams]
    if len(lams) >= 2 and None not in errs:
        ok, breaks = an.grows(errs, STEADY_FLOOR)
        add(f"error grows with λ (median C/C0 at each of the {len(lams)} λ of the scan, "
            f"{lams[0]:g} … {lams[-1]:g})",
            ", ".join(f"{e:.2g}" for e in errs) + _breaks(lams, breaks, "falls"),
            "increasing (below the floating-point floor: not compared)", ok)
    pows = [_median_at(lam_rows, x, "power_median") for x in lams]
    if len(lams) >= 2 and None not in pows:
        ok, breaks = an.grows([-p for p in pows], 0.0)
        add(f"power falls with λ (median P at each of the {len(lams)} λ of the scan)",
            ", ".join(f"{p:.3g}" for p in pows) + _breaks(lams, breaks, "rises"),
            "decreasing", ok)
    if len(networks) < 2:
        return  # the median over all runs is this network's
    for key, sign, verb, what in (("rel_error_median", 1, "falls", "error grows"),
                                  ("power_median", -1, "rises", "power falls")):
        found, bad = 0, []
        for net in networks:
            vals = [_median_at(lam_rows, x, key, net) for x in lams]
            if len(lams) < 2 or None in vals:
                continue
            found += 1
            ok, breaks = an.grows([sign * v for v in vals],
                                  STEADY_FLOOR if key == "rel_error_median" else 0.0)
            if not ok:
                bad.append(net + _breaks(lams, breaks, verb).replace("; ", ": ", 1))
        if found:
            add(f"{what} with λ on each network (its median over its tasks, every λ)",
                f"{found - len(bad)} of {found} networks" + ("; " + "; ".join(bad) if bad else ""),
                f"all {found}", not bad)


def _yes_no(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def _breaks(lams: list[float], breaks: list[int], verb: str) -> str:
    return "".join(f"; {verb} from λ {lams[i]:g} to {lams[i + 1]:g}" for i in breaks)


def _findings(plan, lam_rows, ic_rows, tol_rows, board_rows, noise_rows, labels) -> list[dict]:
    """The paper's qualitative claims, checked on this run's numbers."""
    out = []

    def add(claim, measured, expected, ok):
        out.append({"finding": claim, "measured": measured, "expected": expected, "pass": ok})

    _lambda_checks(add, lam_rows, labels)
    for net in labels:
        s = an.slope(lam_rows, net)
        if s is None:
            continue
        floor = an.has_floor(lam_rows, net)
        add(f"C/C0 ∝ λ² on {net} (slope over λ 1e-10..1e-8)", f"{s:.2f}",
            "2.0 ± 0.1" + (" (λ=0 run has an error floor: law masked)" if floor else ""),
            None if floor else abs(s - 2) <= 0.1)
    zero = {r["init"]: r for r in ic_rows if r["lam"] == 0}
    base = zero.get("k0 1")
    for label, r in zero.items():
        if base is None or label == "k0 1":
            continue
        ratio = base["power_median"] / r["power_median"]
        ok = ratio > 2 and r["rel_error_median"] <= max(10 * base["rel_error_median"], 1e-6)
        add(f"start {label}: lower power at equal error (λ=0)",
            f"{ratio:.1f}x lower P; C/C0 {r['rel_error_median']:.1e} vs {base['rel_error_median']:.1e}",
            {"k0 0.1": "≈9x (reference)", "k0 0.01": "≈26x (reference)"}.get(label, "> 2x"), ok)
    for t in tol_rows:
        if t["network"] != labels[0]:
            continue
        add(f"tolerance τ={t['tau']:g} on {t['network']}: error held near τ, power cut",
            f"tail C/C0 {t['tail_rel_error']:.2g}, P {t['tail_power']:.3g} "
            f"({t['reduction_vs_lam0']:.1f}x below λ=0)",
            "tail C/C0 ≤ 1.5 τ, P below λ=0",
            t["tail_rel_error"] <= 1.5 * t["tau"] and t["reduction_vs_lam0"] > 1)
        if t["fixed_lambda_power_equal_error"] == t["fixed_lambda_power_equal_error"]:
            add(f"tolerance τ={t['tau']:g} vs fixed λ at equal error ({t['network']})",
                f"P ratio controller/fixed {t['controller_over_fixed']:.2f}", "≤ 1.1",
                t["controller_over_fixed"] <= 1.1)
    for net in dict.fromkeys(r["network"] for r in board_rows):
        b = {r["lam"]: r for r in board_rows if r["network"] == net and r["init"] == "uniform"}
        blams = sorted(b)
        if len(blams) > 2:
            ok, breaks = an.grows([-b[x]["power_uW_median"] for x in blams], 0.0)
            add(f"{net}: physical power falls with λ (each of the {len(blams)} λ)",
                ", ".join(f"{b[x]['power_uW_median']:.3g}" for x in blams) + " µW"
                + _breaks(blams, breaks, "rises"), "decreasing", ok)
        if 0.0 in b and 0.05 in b:
            r0, r1 = b[0.0], b[0.05]
            add(f"{net}: λ=0.05 lowers physical power at little error cost",
                f"P {r0['power_uW_median']:.3g} → {r1['power_uW_median']:.3g} µW; C/C0 "
                f"{r0['rel_error_median']:.2g} → {r1['rel_error_median']:.2g}",
                "lower P, C/C0 ≤ 2x", r1["power_uW_median"] < r0["power_uW_median"]
                and r1["rel_error_median"] <= 2 * r0["rel_error_median"])
    for level in sorted({r["noise"] for r in noise_rows if r["noise"] > 0}):
        t = {r["lam"]: r for r in noise_rows if r["noise"] == level}
        small = [x for x in sorted(t) if 0 < x <= 1e-7]
        if 0.0 in t and small:
            a = t[0.0]["clean_relative_error"]
            worst = max(small, key=lambda x: t[x]["clean_relative_error"])
            add(f"noisy targets σ={level:g} V: every λ in {small[0]:g} … {small[-1]:g} costs "
                "nothing on clean targets",
                f"clean C/C0 {a:.3g} (λ=0) vs " + ", ".join(
                    f"{t[x]['clean_relative_error']:.3g}" for x in small)
                + f"; P {t[0.0]['power']:.3g} → {t[small[-1]]['power']:.3g}",
                "within 10 %", t[worst]["clean_relative_error"] <= 1.1 * a)
    return out


def sample_size(lam_rows: list[dict], screened: list[dict]) -> tuple[str, str]:
    """What "median" means in this report: how many runs on how many networks per λ.

    Returns a sentence for the λ-scan section and a short phrase for the trade-off plot.
    """
    runs = [t["runs"] for t in lam_rows if t["network"] == "all"]
    nets = sorted({t["network"] for t in lam_rows if t["network"] != "all"})
    used = [r for r in screened if r.get("used")]
    n = max(runs) if runs else 0
    filt = f"{len(used)} of {len(screened)} screened tasks passed the filter"
    if n <= 1:
        where = f"{nets[0]}" if nets else "no network"
        return (f"Each λ is **one run** on {where} ({filt}): no median, no spread.",
                f"one run on {where}; {filt}")
    return (f"Each λ: the median over {n} runs on {len(nets)} network(s) ({', '.join(nets)}; "
            f"{filt}).", f"median over {n} runs on {len(nets)} network(s)")


def _bias_section(quick: bool, steps: int | None, out: str) -> list[str]:
    """The learning-bias study on the board twin (run in its own process): report lines."""
    from learnboard.studies.paper import bias

    return bias.section(Path(out), quick=quick, steps=steps)


def _comparison_markdown(rows: list[dict], plan: Plan) -> list[str]:
    """The summary: the reference results, judged per row, with the small-α verdicts."""
    n_pass = sum(1 for r in rows if r["pass"])
    n_run = sum(1 for r in rows if r["pass"] is not None)
    moving = [r for r in rows if "no small-α limit" in str(r.get("tolerance"))]
    alpha_note = ""
    if moving:
        n_ok = sum(1 for r in moving if r["pass"])
        alpha_note = (f" {len(moving)} of the compared values ({n_ok} within tolerance) are at "
                      "a λ whose distribution still moves when α is halved at fixed α × steps "
                      "(section \"Small-α limit\"): there the reference and this run agree on "
                      "the discretised update at α 0.5, not on a property of the gradient flow.")
    return [
        "## Summary: reference results (authors' algorithm on r1)\n",
        f"{n_pass} of {n_run} compared values within tolerance (network "
        f"{plan.networks[0]['label']}, seed 0). Reference: an exact re-run of the authors' "
        "published algorithm (Stern et al., APL Machine Learning 2, 016114, 2024) on r1. "
        "Each row states its tolerance: fixed relative ones for the deterministic rows, the "
        "replicas' Tukey fences for the strong-λ rows (section \"Strong λ as "
        "distributions\"); `studies/paper/compare.py` and docs/paper.md." + alpha_note + "\n",
        md_table(rows, [("quantity", "quantity"), ("measured", "measured"),
                        ("reference", "reference"), ("tolerance", "tolerance"),
                        ("small_alpha", "small-α limit"), ("pass", "result")]),
    ]


def _runs_text(report: Report, computed: int) -> str:
    """The header's run count: every run of the report, by kind."""
    c = report.counts or {"sweep": report.runs}
    parts = [f"{c['sweep']} in `sweep/` ({computed} computed now, {c['sweep'] - computed} reused)"]
    for key, what in (("small_alpha", "small-α check (`small_alpha/`)"),
                      ("power_gradient", "power gradient, in-process"),
                      ("bias", "learning bias, in-process")):
        if c.get(key):
            parts.append(f"{c[key]} {what}")
    return f"{report.runs} runs: " + "; ".join(parts) + f"; {report.failed} failed"


def _timing_markdown(report: Report) -> list[str]:
    """Where the report's time went: wall and CPU seconds per section."""
    def sec(x):
        return "–" if x is None else f"{x:.1f}"

    rows = [{"section": r["section"], "runs": "–" if r["runs"] is None else r["runs"],
             "wall": sec(r["wall_s"]), "cpu": sec(r["cpu_s"]), "run": sec(r.get("run_s"))}
            for r in report.timing]
    if not rows:
        return []
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        "## Time per section\n",
        f"Wall and CPU seconds (user + system, this process and its finished worker "
        f"processes) per section, {report.seconds:.0f} s wall and {report.cpu_seconds:.0f} s "
        f"CPU in all (writing this text not counted); load average when the text was "
        f"written {load} (1 / 5 / 15 min). *runs*: the section's runs (of the sweep stages: "
        "those computed now, reused ones cost nothing; of the representability checks: the "
        "tasks checked, cached ones reused); the sweep's "
        "parts: Σ of their runs' own seconds in the worker processes. Table: `timing.csv`.\n",
        md_table(rows, [("section", "section"), ("runs", "runs"), ("wall", "wall (s)"),
                        ("cpu", "CPU (s)"), ("run", "Σ run seconds")]),
    ]


def _write_markdown(report: Report, plan: Plan, computed: int, tables, figs, command: str,
                    grad_lines: list[str] = (), alpha_lines: list[str] = (),
                    bias_lines: list[str] = ()) -> None:
    out = report.out
    nets = ", ".join(n["label"] for n in plan.networks)
    lines = [
        "# Power-efficient coupled learning: reproduction report\n",
        f"Produced by `{command}` in {report.seconds:.0f} s wall, {report.cpu_seconds:.0f} s "
        f"CPU ({_runs_text(report, computed)}; time per section at the end). "
        f"Networks: {nets} ({plan.source}); {plan.steps} steps per linear run; alpha 0.5, "
        "eta 1e-3, k in [1e-4, 1e6], full batch; the notebook's task (2 source and 2 target "
        "edges drawn with `RandomState(seed)`, 20 inputs, y = A x, A = [[0.2, 0.3], [0.1, 0.5]]). "
        "Power P = ½ Σ k ΔV² (the paper's convention; watts when k is in siemens); "
        "board power is the physical Σ I ΔV in watts. Every run is a row of "
        "`sweep/results.csv`; histories are in `sweep/runs/*.npz`.\n",
    ]
    if report.comparison:
        lines += _comparison_markdown(report.comparison, plan)
    lines += ["## Findings checked on this run\n",
              md_table(report.findings, [("finding", "claim"), ("measured", "measured"),
                                         ("expected", "expected"), ("pass", "result")])]
    lam_all = [{**t, "steady": an.steady_label(t)} for t in tables["lambda_scan"]
               if t["network"] == "all"]
    sample, sample_short = sample_size(tables["lambda_scan"], tables["screened_tasks"])
    lines += [
        "## 1. Error and power against λ\n",
        "*Steady runs*: runs whose last half neither drifts nor fluctuates by more than 5 % "
        "(error and power; docs/engine.md, \"Steady state\"); *bursts*: rises of C/C0 above "
        "10× its running minimum; *runs below floor*: final C/C0 under 1e-15, rounding noise "
        "(kept as computed, not a result).\n",
        "![error and power vs lambda](fig1_error_power_vs_lambda.png)\n",
        f"{sample} "
        + ("" if "**one run**" in sample else "Per network: median over its tasks (bands: "
           "min..max). ")
        + "Dashed: the λ² guide "
        + ("of the reference results (5.5e6·λ²)." if plan.reference_rows else "fitted at λ ≤ 1e-9.")
        + " Table: `lambda_scan.csv`.\n",
        md_table(lam_all, [("lam", "λ"), ("runs", "runs"), ("rel_error_median", "median C/C0"),
                           ("rel_error_min", "min"), ("rel_error_max", "max"),
                           ("power_median", "median P"), ("energy_median", "training energy"),
                           ("steady", "steady runs"), ("bursts_max", "most bursts"),
                           ("below_floor_runs", "runs below floor")]),
        *_strong_markdown(tables.get("strong_lambda", [])),
        *alpha_lines,
        "## 2. Initial conditions\n",
        "![initial conditions](fig2_initial_conditions.png)\n",
        "Scale symmetry: a lower start gives the same error at lower power. Table: "
        "`initial_conditions.csv`.\n",
        md_table([{**t, "steady": an.steady_label(t)} for t in tables["initial_conditions"]],
                 [("init", "start"), ("lam", "λ"), ("rel_error_median", "C/C0"),
                  ("power_median", "P"), ("energy_median", "training energy"),
                  ("steady", "steady runs"), ("bursts_max", "most bursts")]),
        "## 3. Error–power trade-off\n",
        "![trade-off](fig3_tradeoff.png)\n",
        f"Each point is one λ ({sample_short}; bars min..max; grey: single runs).\n",
        "## 4. Tolerance controller vs fixed λ\n",
        "![tolerance controller](fig4_tolerance_controller.png)\n",
        "The closed-loop tolerance controller (docs/engine.md), judged by its means over the last 10 % of steps, "
        "against the fixed-λ curve of the same task (λ at decades and half decades; power "
        "interpolated log-log at equal error). "
        "Table: `tolerance.csv`.\n",
        md_table([{**t, "steady_state": _yes_no(t.get("steady_state"))} for t in tables["tolerance"]], [("network", "network"), ("tau", "τ"),
                                       ("tail_rel_error", "tail C/C0"), ("tail_power", "tail P"),
                                       ("reduction_vs_lam0", "P(λ=0)/P"),
                                       ("fixed_lambda_power_equal_error", "fixed-λ P at equal error"),
                                       ("controller_over_fixed", "ratio"),
                                       ("steady_state", "steady")]),
    ]
    if plan.board:
        lines += [
            f"## 5. Transistor board {plan.board}: nominal and with device imperfections\n",
            "![board](fig5_board_gen2.png)\n",
            f"The board profile's 32 NMOS edges (the lab-fit model of Dillavou et al., PNAS 2024) through the engine's board path, "
            f"{plan.board_steps} steps, {plan.board_train_size} examples, alpha 2, eta 0.5 (gate "
            "volts per V² of drop terms). *Imperfect*: free state on network 0 and clamped state "
            "on network 1, each with its own device spread (vt, beta; seed = task seed), and "
            "every node read through the 12-bit ADC (one LSB at the node ≈ 0.12 mV). For "
            "transistors the λ term is a heuristic (no co-content): judged by the physical "
            "power Σ I ΔV it reaches. *Emulated*: `learnboard.host.session.run_session` on the "
            "in-process emulated board — the unchanged firmware runs the rule on the "
            "emulator's devices (mismatch, ADC, gate leakage, pulse-charged gates) with the "
            "session's own learning settings, "
            f"{plan.emulated_steps} steps; C/C0 as the host measures it, power = the "
            "emulator's true Σ I ΔV. Table: `board.csv`.\n",
            md_table([{**t, "steady": an.steady_label(t)} for t in tables["board"]], [("network", "board"), ("init", "gates"), ("lam", "λ"),
                                       ("rel_error_median", "C/C0"),
                                       ("power_uW_median", "P (µW)"),
                                       ("initial_power_uW", "P before (µW)"),
                                       ("energy_uW_steps", "energy (µW·steps)"),
                                       ("newton_iterations_mean", "Newton it."),
                                       ("steady", "steady runs")]),
            *grad_lines,
        ]
    lines += [
        "## 6. Beyond the paper: noisy targets\n",
        "![noise](fig6_noisy_targets.png)\n",
        "Gaussian noise (std σ in volts) on the training targets. The training error is floored "
        "by the noise; the error on the clean targets shows what λ costs. Table: `noise.csv`.\n",
        md_table(tables["noise"], [("noise", "σ (V)"), ("lam", "λ"),
                                   ("relative_error", "C/C0 (noisy train)"),
                                   ("clean_relative_error", "C/C0 (clean)"), ("power", "P"),
                                   ("energy", "energy")]),
        "## 7. Beyond the paper: energy spent during training\n",
        "![energy](fig7_training_energy.png)\n",
        "Training energy = Σ over steps of the free-state power (power × steps; trapezoid over "
        "the recorded history). A low start saves energy during the whole run, not only in the "
        "learned solution.\n",
        *sc.markdown(tables["screened_tasks"], plan.screen_below, plan.candidate_seeds,
                     random_starts=plan.inverse_starts, more_starts=plan.inverse_more_starts),
        *bias_lines,
        *_timing_markdown(report),
        "## Files\n",
        "- `report.md` (this file), `fig*.png`\n"
        "- tables: " + ", ".join(f"`{k}.csv`" for k, v in tables.items() if v) + "\n"
        "- `sweep/results.csv` (every run), `sweep/runs/<id>.json|npz` (definitions, histories)\n",
    ]
    (out / "report.md").write_text("\n".join(lines))
