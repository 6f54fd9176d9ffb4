"""Figures of a run folder (``learnboard plot RUN_DIR``), matplotlib with the Agg backend.

``plot_run(run_dir, out_dir=None) -> list[Path]`` writes into ``RUN_DIR/figures/``:

- ``error.png``: relative training error C/C0 against step (log-log), with the tolerance;
- ``power.png``: board-reported power (W) against step (log-log), with the true power
  before and after when the board was emulated;
- ``lambda.png``: lambda against step (symmetric log: lambda is 0 until a controller starts);
- ``tradeoff.png``: power against C/C0 along the run, coloured by step;
- ``network.png``: the network drawn with each edge's gate voltage (transistor boards) or
  conductance (digipot boards) at the first and the last checkpoint.

Only the records that stand for their step are drawn (steps redone after a restore
supersede the earlier ones, see :mod:`learnboard.host.tables`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnboard.errors import InputError

from .tables import Table, open_run, run_tables

DPI = 150
FIGSIZE = (6.0, 4.2)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _plt()
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise InputError(f"cannot write the figure: {exc.strerror}; free some space, or draw "
                         "elsewhere with --out", source=str(path)) from None
    finally:
        plt.close(fig)
    return path


def current_telemetry(tables: dict[str, Table]) -> Table:
    """Telemetry rows that stand for their step, sorted by step."""
    t = tables["telemetry"]
    if not t or "step" not in t:
        return {}
    keep = t["superseded"] == 0
    order = np.argsort(t["step"][keep], kind="stable")
    return {k: v[keep][order] for k, v in t.items()}


def _log_x(ax, steps: np.ndarray) -> None:
    if steps.size and steps.min() > 0:
        ax.set_xscale("log")


def _summary(tables: dict[str, Table]) -> dict[str, str]:
    s = tables.get("summary")
    return dict(zip(s["key"].tolist(), s["value"].tolist(), strict=True)) if s else {}


def _float(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and np.isfinite(v) else None


def plot_error(t: Table, summary: dict, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    rel = t["rel_err"] if "rel_err" in t else t["err"]
    ok = rel > 0
    ax.plot(steps[ok], rel[ok], color="tab:blue", lw=1.4, label="training error (telemetry)")
    tol = _float(summary.get("tolerance"))
    if tol:
        ax.axhline(tol, color="tab:red", ls="--", lw=1, label=f"tolerance τ = {tol:.3g}")
    final = _float(summary.get("relative_error"))
    if final and steps.size:
        ax.plot([steps[-1]], [final], "o", color="tab:blue", mfc="white", label="final (infer)")
    test = _float(summary.get("test_error"))
    if test and steps.size:
        acc = _float(summary.get("accuracy"))
        label = "held-out test (infer)" + (f", accuracy {100 * acc:.1f} %" if acc is not None else "")
        ax.plot([steps[-1]], [test], "s", color="tab:green", label=label)
    _log_x(ax, steps)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("relative error C/C₀" if "rel_err" in t else "error C (V²)")
    ax.set_title(f"{title}: error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_power(t: Table, summary: dict, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    ok = t["pwr"] > 0
    ax.plot(steps[ok], t["pwr"][ok], color="tab:orange", lw=1.4, label="board-reported power")
    p0, tp0, tp = (_float(summary.get(k)) for k in ("initial_true_power", "initial_true_power",
                                                     "true_power"))
    if tp0 and tp and steps.size:
        ax.plot([steps[0], steps[-1]], [tp0, tp], "D", color="tab:purple", ls="",
                label="true power (emulator), before / after training")
    _log_x(ax, steps)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("power (W)")
    ax.set_title(f"{title}: power")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_lambda(t: Table, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    lam = t["lam"].astype(float)
    ax.step(steps, lam, where="post", color="tab:green", lw=1.4, label="λ (power weight)")
    pos = lam[lam > 0]
    if pos.size:
        ax.set_yscale("symlog", linthresh=float(pos.min()))
    ax.set_xlabel("step")
    ax.set_ylabel("λ (dimensionless)")
    ax.set_title(f"{title}: power weight λ")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_tradeoff(t: Table, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    rel = t["rel_err"] if "rel_err" in t else t["err"]
    ok = (rel > 0) & (t["pwr"] > 0)
    x, y, s = rel[ok], t["pwr"][ok], t["step"][ok]
    ax.plot(x, y, color="0.75", lw=0.8, zorder=1)
    sc = ax.scatter(x, y, c=s, cmap="viridis", s=14, zorder=2)
    if x.size:
        ax.plot(x[0], y[0], "o", mfc="none", mec="black", ms=9, label="start")
        ax.plot(x[-1], y[-1], "*", color="tab:red", ms=11, label="end")
    fig.colorbar(sc, ax=ax, label="step")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("relative error C/C₀" if "rel_err" in t else "error C (V²)")
    ax.set_ylabel("board-reported power (W)")
    ax.set_title(f"{title}: error–power trade-off")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def edge_values(board, states: np.ndarray) -> tuple[np.ndarray, str]:
    """What to colour each edge by: gate volts (transistor boards) or conductance in S."""
    states = np.asarray(states, dtype=float)
    kinds = [e.kind for e in board.edges]
    if "transistor" in kinds:
        return states, "gate voltage (V)"
    g = np.full(len(kinds), np.nan)
    for i, e in enumerate(board.edges):
        if e.kind == "digipot":
            p = board.parts[e.part]
            f = states[i] / (p.n_taps - 1)
            r = p.r_min * (p.r_max / p.r_min) ** f if p.taper == "log" else p.r_min + (p.r_max - p.r_min) * f
            g[i] = 1.0 / (r + p.r_wiper)
        elif e.kind == "resistor":
            g[i] = 1.0 / e.resistance
    return g, "conductance (S)"


def plot_network(board, before: np.ndarray, after: np.ndarray, labels: tuple[str, str],
                 title: str, path: Path) -> Path:
    """Two panels: the network with edges coloured by state before and after."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm, Normalize

    from learnboard.boards.draw import layout

    plt = _plt()
    pos = layout(board)
    ends = board.edge_array()
    vb, unit = edge_values(board, before)
    va, _ = edge_values(board, after)
    both = np.concatenate([vb, va])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1e-12 + abs(lo) * 1e-6
    norm = LogNorm(lo, hi) if unit.startswith("conductance") and lo > 0 else Normalize(lo, hi)
    # a wrap-around edge of a periodic lattice would cross the board: draw it as a stub
    seg = pos[ends]
    lengths = np.linalg.norm(seg[:, 0] - seg[:, 1], axis=1)
    long = lengths > 1.6 * (float(np.median(lengths)) or 1.0)
    seg = seg.copy()
    seg[long, 1] = seg[long, 0] + 0.3 * (seg[long, 1] - seg[long, 0]) / lengths[long, None]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.8))
    for ax, vals, label in zip(axes, (vb, va), labels, strict=True):
        lc = LineCollection(seg, cmap="plasma", norm=norm, linewidths=np.where(long, 2.0, 3.5),
                            linestyles=[(0, (2, 1)) if w else "solid" for w in long])
        lc.set_array(np.ma.masked_invalid(vals))
        ax.add_collection(lc)
        ins = [p.a for p in board.inputs]
        outs = [p.a for p in board.outputs]
        ax.scatter(pos[:, 0], pos[:, 1], s=40, c="white", edgecolors="black", zorder=3)
        ax.scatter(pos[ins, 0], pos[ins, 1], s=90, c="tab:green", edgecolors="black", zorder=4,
                   label="input")
        ax.scatter(pos[outs, 0], pos[outs, 1], s=90, c="tab:red", edgecolors="black", zorder=4,
                   label="output")
        ax.scatter(pos[[board.ground], 0], pos[[board.ground], 1], s=90, marker="v", c="black",
                   zorder=4, label="ground")
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
        span = float(np.ptp(pos, axis=0).max()) or 1.0
        ax.set_xlim(pos[:, 0].min() - 0.2 * span, pos[:, 0].max() + 0.2 * span)
        ax.set_ylim(pos[:, 1].min() - 0.2 * span, pos[:, 1].max() + 0.2 * span)
        ax.axis("off")
    axes[0].legend(loc="lower left", fontsize=7, bbox_to_anchor=(0.0, -0.12), ncol=3)
    fig.colorbar(lc, ax=axes, label=unit, shrink=0.85)
    fig.suptitle(f"{title}: edge states", fontsize=11)
    path = Path(path)
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise InputError(f"cannot write the figure: {exc.strerror}; free some space, or draw "
                         "elsewhere with --out", source=str(path)) from None
    finally:
        plt.close(fig)
    return path


def _run_board(rf):
    from learnboard.boards import load_board

    if rf.board_path.is_file():
        return load_board(rf.board_path)
    cfg = rf.read_config()
    name = cfg.get("board")
    if name:
        try:
            return load_board(name)
        except Exception:  # noqa: BLE001 - a missing profile only costs the network figure
            return None
    return None


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the run's figures (see the module docstring); returns the files written."""
    rf = open_run(run_dir)
    tables = run_tables(rf.path)
    t = current_telemetry(tables)
    if not t or t["step"].size == 0:
        raise InputError("the telemetry log holds no telemetry records yet; nothing to plot",
                         source=str(rf.log_path))
    out = Path(out_dir) if out_dir is not None else rf.figures_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the figures folder: {exc.strerror}; draw elsewhere with --out",
                         source=str(out)) from None
    summary = _summary(tables)
    title = rf.path.name
    written = [plot_error(t, summary, title, out / "error.png"),
               plot_power(t, summary, title, out / "power.png"),
               plot_lambda(t, title, out / "lambda.png"),
               plot_tradeoff(t, title, out / "tradeoff.png")]
    ckpts = [ck for ck, _ in (rf.read_checkpoint(p) for p in rf.checkpoints()) if ck is not None]
    board = _run_board(rf) if ckpts else None
    if board is not None:
        from .schemas import EdgeStates, try_convert

        first, last = (try_convert(ck, EdgeStates) for ck in (ckpts[0], ckpts[-1]))  # damaged ones passed over
        if first and last and len(first.k) == len(last.k) == board.n_edges:
            written.append(plot_network(
                board, np.asarray(first.k), np.asarray(last.k),
                (f"step {first.step} (first checkpoint)", f"step {last.step} (last checkpoint)"),
                title, out / "network.png"))
    return written
