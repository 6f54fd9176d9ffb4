"""``learnboard sim --board``: train a board profile's simulated physics (:class:`~learnboard.engine.board_engine.BoardEngine`)."""

from __future__ import annotations

from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_session_defaults, board_task
from learnboard.engine.config import LearningConfig
from learnboard.errors import InputError
from learnboard.tasks import Dataset


def gradient_summary(h: dict) -> dict:
    """The local power term against the exact gradient, from a tracked history: the
    free and clamped power at the end and the agreement's median over the recorded steps."""
    import numpy as np

    def med(key: str) -> float:
        v = np.asarray(h[key], dtype=float)
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else float("nan")

    return {"power_free_watts": float(h["power_watts"][-1]),
            "power_clamped_watts": float(h["power_clamped_watts"][-1]),
            "power_total_watts": float(h["power_watts"][-1] + h["power_clamped_watts"][-1]),
            "gradient_agreement": {k: med(k) for k in ("cos_free", "sign_free", "cos_total",
                                                       "sign_total", "cos_free_above_floor")},
            "at_floor": float(h["at_floor"][-1])}  # the last step is always evaluated


def run_board_sim(args) -> int:
    """``learnboard sim --board``: train a board profile's simulated physics."""
    import csv
    import json
    from pathlib import Path

    from learnboard.boards import load_board
    from learnboard.engine.controller import ToleranceController
    from learnboard.engine.steady import floor_flags, run_verdict
    from learnboard.tasks import parse_coeffs, read_csv, regression_task

    if getattr(args, "replicas", None) is not None:
        raise InputError("runs the linear engine only: drop --board or --replicas",
                         field="--replicas")
    board = load_board(args.board)
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    n_out = len(board.outputs)
    if args.data:
        data = read_csv(args.data)
    elif args.coeffs == "0.2,0.3;0.1,0.5" and args.train_size == 20:
        data = board_task(board, args.seed)  # what `learnboard train` uploads
    else:
        coeffs = parse_coeffs(args.coeffs)
        if coeffs.shape != (n_out, n_in):
            if args.coeffs != "0.2,0.3;0.1,0.5" or coeffs.shape[0] < n_out or coeffs.shape[1] < n_in:
                raise InputError(f"the board has {n_in} inputs and {n_out} outputs: give a "
                                 f"{n_out}x{n_in} matrix", field="--coeffs")
            coeffs = coeffs[:n_out, :n_in]
        raw = regression_task(coeffs, args.train_size, seed=args.seed)
        vmax = board.limits.max_node_volts  # inputs span the board's safe node range
        data = Dataset(raw.inputs * vmax, raw.targets * vmax, name=f"regression on {board.name}")
    # the generic defaults mean "not given": the board's settings, as `learnboard train`
    alpha_at, eta = board_session_defaults(board, args.steps,
                                           None if args.alpha == 0.5 else args.alpha,
                                           None if args.eta == 1e-3 else args.eta)
    config = LearningConfig(alpha=alpha_at(0), eta=eta, lam=args.lam)
    rule = "sign" if board.learning.rule == "sign" else "accumulate"
    model = getattr(args, "board_model", None) or "board"
    term = getattr(args, "power_term", None) or "local"
    if term != "local" and not board.has_gates:
        raise InputError(f"the board {board.name} has no transistor gates, so no power "
                         "gradient with respect to gates: drop --power-term",
                         field="--power-term")
    # a transistor board also reports how the local term agrees with the exact gradient
    track = board.has_gates
    # a local run evaluates the agreement at ~200 steps (each costs an adjoint solve per
    # example); an exact run has the gradient at every step anyway
    eng = BoardEngine(board, data, config, digipot_rule=rule, model=model, seed=args.seed,
                      alpha_at=alpha_at, power_term=term, track_gradient=track,
                      track_every=1 if term != "local" else max(1, args.steps // 200),
                      null_offset_every=board.learning.null_offset_every
                      if getattr(args, "null_offset_every", None) is None else args.null_offset_every)
    init = getattr(args, "init", None) or board.learning.init  # as learnboard train's session
    state0 = eng.initial_state("low" if init == "low" else "uniform")
    ctl = ToleranceController(args.tolerance) if args.tolerance is not None else None
    res = eng.train(state0, args.steps, controller=ctl, record_every=args.record_every or 1)
    h = res.history
    info = {"relative_error": res.relative_error, "error": float(h["error"][-1]),
            "initial_error": float(h["error"][0]),
            "power": None,  # the ½ co-content convention is undefined for transistor edges
            "power_watts": float(h["power_watts"][-1]),
            "initial_power_watts": float(h["power_watts"][0]),
            "initial_power": None, "steps": res.steps,
            "steps_per_second": res.steps / res.seconds if res.seconds else float("inf"),
            "seconds": res.seconds, "board": board.name, "digipot_rule": rule, "model": model,
            "seed": args.seed, "alpha": float(h["alpha"][0]), "alpha_final": float(h["alpha"][-1]),
            "eta": eta, "newton_iterations_mean": res.newton_iterations_mean,
            "n_examples": data.n_examples, "lam_final": float(h["lam"][-1]),
            "power_term": term, "null_offset_every": eng.null_offset_every, **run_verdict(h, res.relative_error)}
    if track:
        info.update(gradient_summary(h))
    task_name = getattr(board.learning, "task", None) or "regression"
    if data is not None and not args.data and task_name != "regression":
        from learnboard.tasks import load_task

        task = load_task(task_name, board=board, seed=args.seed)
        if task.kind == "classification":  # nearest class code, as learnboard train reports
            info["accuracy"] = task.accuracy(eng.outputs_at(res.state, task.x_train), task.y_train)
            info["test_accuracy"] = task.accuracy(eng.outputs_at(res.state, task.x_test),
                                                  task.y_test)
    if args.save:
        d = Path(args.save)
        d.mkdir(parents=True, exist_ok=True)
        with (d / "state.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["edge", "name", "kind", "initial", "final"])
            for i, e in enumerate(board.edges):
                w.writerow([i, e.name, e.kind, res.initial_state[i], res.state[i]])
        with (d / "history.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            hf = {**h, "below_floor": floor_flags(h["relative_error"]).astype(int)}
            w.writerow(list(hf))
            w.writerows(zip(*(hf[c].tolist() for c in hf), strict=True))
        (d / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    if args.json:
        print(json.dumps(info))
    else:
        print(f"board {board.name}: {res.steps} steps in {res.seconds:.3g} s CPU; C/C0 "
              f"{info['relative_error']:.4g}; physical power {info['initial_power_watts']:.4g} W -> "
              f"{info['power_watts']:.4g} W; Newton iterations per warm-started solve "
              f"{res.newton_iterations_mean:.2f}"
              + (f"; accuracy {info['accuracy']:.2f} (held out {info['test_accuracy']:.2f})"
                 if "accuracy" in info else ""))
        from learnboard.engine.simulate import steady_text

        print(f"steady state: {steady_text(info)}")
    return 0
