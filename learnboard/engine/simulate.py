"""What ``learnboard sim`` does: build the network, terminals and data, train, report."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from learnboard.engine.config import LearningConfig, initial_conductances
from learnboard.engine.controller import ToleranceController, tail_means
from learnboard.engine.linear import LinearEngine, Terminals, TrainResult
from learnboard.engine.steady import floor_flags, run_verdict
from learnboard.errors import InputError
from learnboard.network import Network, read_network, write_network
from learnboard.tasks import Dataset, notebook_task, parse_coeffs, read_csv, regression_task

DEFAULT_GENERATE = "disordered:N=64,seed=1"


def build_network(args: argparse.Namespace) -> tuple[Network, bool]:
    """The network and whether it was generated (so --save writes it out)."""
    if args.network:
        return read_network(args.network, ground=args.ground), False
    from learnboard.generate import from_spec

    net = from_spec(args.generate or DEFAULT_GENERATE)
    if args.ground is not None:
        net = Network(net.n_nodes, net.edges, args.ground, net.positions, net.size, name=net.name)
    return net, True


def build_task(args: argparse.Namespace, net: Network) -> tuple[Terminals, Dataset]:
    """Terminals and data from the options (notebook-style draw when no terminal is given)."""
    given = args.sources or args.targets or args.source_nodes or args.target_nodes
    coeffs = parse_coeffs(args.coeffs)
    if not given:
        if args.data:
            raise InputError("with --data, name the terminals: --sources/--targets (edges) or "
                             "--source-nodes/--target-nodes", field="--data")
        src, tgt, data = notebook_task(net.n_edges, seed=args.seed, n_examples=args.train_size,
                                       coeffs=coeffs)
        return Terminals(tuple(int(e) for e in src), tuple(int(e) for e in tgt)), data
    terms = Terminals(tuple(args.sources), tuple(args.targets), tuple(args.source_nodes),
                      tuple(args.target_nodes))
    if args.data:
        return terms, read_csv(args.data)
    if coeffs.shape != (terms.n_targets, terms.n_sources):
        raise InputError(f"--coeffs is {coeffs.shape[0]}x{coeffs.shape[1]} but the task has "
                         f"{terms.n_targets} targets and {terms.n_sources} sources; give a "
                         f"{terms.n_targets}x{terms.n_sources} matrix", field="--coeffs")
    return terms, regression_task(coeffs, args.train_size, seed=args.seed)


def config_from(args: argparse.Namespace) -> LearningConfig:
    return LearningConfig(alpha=args.alpha, eta=args.eta, lam=args.lam, k_min=args.k_min,
                          k_max=args.k_max, batch=args.batch, order=args.order,
                          update_prob=args.update_prob, seed=args.seed)


def summary(result: TrainResult, net: Network, terms: Terminals, data: Dataset,
            controller: ToleranceController | None) -> dict:
    """The JSON summary (power in the paper's ½ convention; power_watts = Σ k dV²)."""
    out = {
        "relative_error": result.relative_error,
        "error": result.final.error,
        "initial_error": result.initial.error,
        "power": result.final.power,
        "power_watts": result.final.power_watts,
        "initial_power": result.initial.power,
        "initial_power_watts": result.initial.power_watts,
        "steps": result.steps,
        "steps_per_second": result.steps_per_second,
        "seconds": result.seconds,
        "frac_at_min": result.final.frac_at_min,
        "frac_at_max": result.final.frac_at_max,
        "lam_final": float(result.history["lam"][-1]),
        "network": net.name,
        "n_nodes": net.n_nodes,
        "n_edges": net.n_edges,
        "ground": net.ground,
        "source_edges": list(terms.source_edges),
        "target_edges": list(terms.target_edges),
        "source_nodes": list(terms.source_nodes),
        "target_nodes": list(terms.target_nodes),
        "n_examples": data.n_examples,
        **result.info,
        **run_verdict(result.history, result.relative_error),
    }
    if controller is not None:
        tail = tail_means(result.history)
        out["tolerance"] = {"tau": controller.tau, "s0": controller.s0,
                            "tail_relative_error": tail["relative_error"],
                            "tail_power": tail["power"], "tail_power_watts": tail["power_watts"],
                            "tail_lam": tail["lam"]}
    return out


def save(directory: str, result: TrainResult, net: Network, info: dict, generated: bool) -> None:
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror}", source=directory) from None
    with (d / "conductances.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["edge", "i", "j", "k_initial", "k"])
        for e, ((i, j), k0, k) in enumerate(zip(net.edges, result.initial_conductances,
                                                  result.conductances, strict=True)):
            w.writerow([e, int(i), int(j), repr(float(k0)), repr(float(k))])
    hist = {**result.history, "below_floor": floor_flags(result.history["relative_error"])}
    cols = list(hist)
    with (d / "history.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in zip(*(hist[c] for c in cols), strict=True):
            w.writerow([int(v) if c in ("step", "below_floor") else repr(float(v))
                        for c, v in zip(cols, row, strict=True)])
    (d / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    if generated:
        write_network(net, d / "network.txt")


def run_sim(args: argparse.Namespace) -> int:
    if args.board:
        if getattr(args, "inverse", 0):
            raise InputError("the inverse problem is solved for linear networks only; drop "
                             "--inverse or use --network/--generate", field="--inverse")
        from learnboard.engine.board_sim import run_board_sim

        return run_board_sim(args)
    args.init = getattr(args, "init", None) or "uniform"  # --board's default is the profile's
    if getattr(args, "null_offset_every", None):
        raise InputError("the null offset cancels a board's learning bias; the linear engine "
                         "has none: add --board PROFILE or drop --null-offset-every",
                         field="--null-offset-every")
    if args.steps < 0:
        raise InputError("must be >= 0", field="--steps")
    net, generated = build_network(args)
    terms, data = build_task(args, net)
    config = config_from(args)
    engine = LinearEngine(net, terms, data, config, method=args.method)
    k0 = initial_conductances(net.n_edges, args.init, args.k0, k_min=args.k_min, k_max=args.k_max,
                              seed=args.seed)
    if getattr(args, "replicas", None) is not None:
        return run_replicas(args, engine, net, terms, data, k0, generated)
    controller = ToleranceController(args.tolerance) if args.tolerance is not None else None
    record_every = args.record_every
    if controller is not None and not record_every:
        record_every = 1  # the tail means need every step
    result = _train_with_progress(engine, k0, args.steps, record_every, controller, args.json)
    info = summary(result, net, terms, data, controller)
    if getattr(args, "inverse", 0):
        if args.inverse < 0 or args.inverse_more < 0 or args.inverse_maxiter < 1:
            raise InputError("give 0 or more random starts and at least 1 iteration",
                             field="--inverse")
        from learnboard.engine.inverse import check

        info["inverse"] = check(engine, result.conductances, args.inverse_below,
                                plateau=result.relative_error,
                                plateau_clipped=result.final.frac_at_min,
                                random_starts=args.inverse, more_starts=args.inverse_more,
                                seed=args.seed,
                                maxiter=args.inverse_maxiter)
    if args.save:
        save(args.save, result, net, info, generated)
    if args.json:
        print(json.dumps(info))
    else:
        print_summary(info)
    return 0


def run_replicas(args: argparse.Namespace, engine: LinearEngine, net: Network, terms: Terminals,
                 data: Dataset, k0, generated: bool) -> int:
    """``--replicas R``: R runs from perturbed k0 (and/or learning seeds); their distribution."""
    from dataclasses import replace

    from learnboard.engine.replicas import distribution, perturbed

    n, eps = args.replicas, args.perturb
    if n < 1:
        raise InputError(f"must be at least 1, got {n}", field="--replicas")
    if not (eps >= 0 and math.isfinite(eps)):
        raise InputError(f"must be a finite relative size >= 0, got {eps}", field="--perturb")
    if eps == 0 and not args.vary_seed and n > 1:
        raise InputError("the replicas would all be the same run: give --perturb EPS (e.g. "
                         "--perturb 1e-12) and/or --vary-seed", field="--replicas")
    record_every = args.record_every
    if args.tolerance is not None and not record_every:
        record_every = 1
    runs = []
    for i in range(n):
        seed = args.seed + i if args.vary_seed else args.seed
        eng = engine
        if args.vary_seed:
            eng = LinearEngine(net, terms, data, replace(engine.config, seed=seed),
                               method=args.method)
        ctl = ToleranceController(args.tolerance) if args.tolerance is not None else None
        res = eng.train(perturbed(k0, eps, args.seed, i), args.steps, record_every=record_every,
                        controller=ctl)
        info = summary(res, net, terms, data, ctl)
        info.update(replica=i, perturb=eps, learning_seed=seed)
        runs.append(info)
        if args.save:
            save(str(Path(args.save) / f"replica{i:03d}"), res, net, info, generated)
    out = {"replicas": runs, **distribution(runs)}
    if args.save:
        (Path(args.save) / "replicas.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out))
    else:
        print_replicas(out)
    return 0


def print_replicas(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = out["replicas"]
    t = Table(title=f"learnboard sim — {len(runs)} replicas of {runs[0]['network']}")
    for col in ("", "median", "IQR", "min – max"):
        t.add_column(col)
    for key, label in (("relative_error", "C/C0"), ("power", "power ½Σk dV²"),
                       ("frac_at_min", "edges at k-min")):
        if key in out["median"]:
            q, r = out["iqr"][key], out["range"][key]
            t.add_row(label, f"{out['median'][key]:.4g}", f"{q[0]:.4g} – {q[1]:.4g}",
                      f"{r[0]:.4g} – {r[1]:.4g}")
    Console().print(t)
    for key in ("relative_error", "power"):
        found = out["modes"].get(key, [])
        print(f"modes of {key}: " + "; ".join(f"{m['centre']:.4g} ({m['count']} runs)"
                                              for m in found))
    print(f"steady: {out['steady_runs']} of {len(runs)} runs; below the floor: "
          f"{out['below_floor_runs']}")


def _train_with_progress(engine, k0, steps, record_every, controller, quiet) -> TrainResult:
    if quiet or steps < 20000 or not sys.stderr.isatty():
        return engine.train(k0, steps, record_every=record_every, controller=controller)
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  "{task.completed}/{task.total} steps", TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task("training", total=steps)
        return engine.train(k0, steps, record_every=record_every, controller=controller,
                            progress=lambda s: bar.update(task, completed=s),
                            progress_every=max(1, steps // 200))


def steady_text(info: dict) -> str:
    """One line of the steady-state verdict for the tables."""
    if info.get("drift_relative_error") is None:
        text = "not judged (history too short)"
    else:
        word = "yes" if info["steady_state"] else "no"
        dp = info.get("drift_power")
        text = (f"{word} (last half: drift C/C0 {info['drift_relative_error']:.2g}"
                + (f", P {dp:.2g}" if dp is not None else "")
                + f"; fluctuation {info['fluctuation_relative_error']:.2g})")
    if info.get("bursts"):
        text += f"; {info['bursts']} burst(s), final/min C/C0 {info['rise']:.3g}"
    if info.get("below_floor"):
        text += "; C/C0 below the floating-point floor (rounding noise)"
    return text


def print_summary(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"learnboard sim — {info['network']}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    terms = []
    for key, label in (("source_edges", "source edges"), ("source_nodes", "source nodes"),
                       ("target_edges", "target edges"), ("target_nodes", "target nodes")):
        if info[key]:
            terms.append(f"{label} {','.join(map(str, info[key]))}")
    t.add_row("network", f"{info['n_nodes']} nodes, {info['n_edges']} edges, ground {info['ground']}")
    t.add_row("task", f"{'; '.join(terms)}; {info['n_examples']} examples")
    t.add_row("steps", f"{info['steps']} in {info['seconds']:.3g} s "
                       f"({info['steps_per_second']:.4g} steps/s, solver {info.get('solver')})")
    t.add_row("relative error C/C0", f"{info['relative_error']:.6g}")
    t.add_row("error C (V²)", f"{info['initial_error']:.4g} → {info['error']:.4g}")
    t.add_row("power ½Σk dV² (paper)", f"{info['initial_power']:.4g} → {info['power']:.4g}")
    t.add_row("power Σk dV² (W-equiv.)", f"{info['initial_power_watts']:.4g} → {info['power_watts']:.4g}")
    t.add_row("edges at k-min / k-max", f"{info['frac_at_min']:.1%} / {info['frac_at_max']:.1%}")
    t.add_row("lambda (final)", f"{info['lam_final']:.3g}")
    t.add_row("steady state", steady_text(info))
    if "tolerance" in info:
        tol = info["tolerance"]
        t.add_row("tolerance", f"tau {tol['tau']:.3g}, reached at step {tol['s0']}; last 10 %: "
                               f"C/C0 {tol['tail_relative_error']:.3g}, P {tol['tail_power']:.4g}")
    if "inverse" in info:
        inv = info["inverse"]
        t.add_row("inverse problem", f"best C/C0 {inv['relative_error']:.3g} ({inv['best_start']} "
                                     f"start of {inv['n_starts']}), {inv['frac_at_min']:.1%} at k-min")
        t.add_row("verdict", inv["verdict"])
    Console().print(t)
