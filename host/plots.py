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

import math
from pathlib import Path

import numpy as np

from learnboard.errors import InputError

from .tables import Table, current_telemetry, open_run, run_tables

__all__ = ["current_telemetry", "plot_compare", "plot_run"]

DPI = 150
FIGSIZE = (6.0, 4.2)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, option: str = "--out") -> Path:
    plt = _plt()
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise InputError(f"cannot write the figure: {exc.strerror}; free some space, or draw "
                         f"elsewhere with {option}", source=str(path)) from None
    finally:
        plt.close(fig)
    return path


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Readable tick values inside ``[lo, hi]`` for a log axis: the powers of ten when at
    least three fall inside, else 1-2-5 steps of each decade (finer ones for a narrower range),
    at most ``max_ticks``. A log axis spanning less than a decade otherwise gets one major
    tick or none, and matplotlib then labels minor ticks, whose labels collide."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    if hi <= lo * (1 + 1e-9):
        return [lo]

    def inside(v: float) -> bool:
        return lo * (1 - 1e-6) <= v <= hi * (1 + 1e-6)  # float32 values a board holds

    def thin(vals: list[float]) -> list[float]:
        return vals[:: math.ceil(len(vals) / max_ticks)]

    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0 ** k for k in range(k0, k1 + 1) if inside(10.0 ** k)]
    if len(decades) >= 3:
        return thin(decades)
    for mantissas in ((1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 6, 8),
                      (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9)):
        vals = sorted({float(f"{m * 10.0 ** k:.6g}") for k in range(k0 - 1, k1 + 1)
                       for m in mantissas if inside(m * 10.0 ** k)})
        if len(vals) >= 3:
            return decades if len(vals) > max_ticks and len(decades) >= 2 else thin(vals)
    return [lo, hi]


def tick_label(v: float) -> str:
    """``0.02``, ``300``, ``1e-09``: short, and exact for the values :func:`log_ticks` picks."""
    return f"{v:.3g}"


def set_log_axis(ax, which: str, values, max_ticks: int = 6) -> None:
    """A log ``which`` axis ("x" or "y") labelled at :func:`log_ticks` of the positive
    finite ``values`` (minor ticks unlabelled)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    ticks = log_ticks(float(v.min()), float(v.max()), max_ticks)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FixedFormatter([tick_label(t) for t in ticks]))
    axis.set_minor_formatter(NullFormatter())


def _log_x(ax, steps: np.ndarray) -> None:
    if steps.size and steps.min() > 0:
        set_log_axis(ax, "x", steps, max_ticks=7)


def _summary(tables: dict[str, Table]) -> dict[str, str]:
    s = tables.get("summary")
    return dict(zip(s["key"].tolist(), s["value"].tolist(), strict=True)) if s else {}


def _float(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and np.isfinite(v) else None


UW = 1e6  # figures show power in µW: a board's network draws tens to hundreds of them
SOURCE_LABEL = {"measured": "measured by its current sensor", "estimate": "device-model estimate"}


def power_source_label(summary: dict) -> str:
    """How the board got its power figure (a run without ``power_source``: an estimate)."""
    return SOURCE_LABEL["measured" if summary.get("power_source") == "measured" else "estimate"]


def plot_error(t: Table, summary: dict, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    rel = t["rel_err"] if "rel_err" in t else t["err"]
    ok = rel > 0
    ax.plot(steps[ok], rel[ok], color="tab:blue", lw=1.4, label="training error (telemetry)")
    shown = list(rel[ok])
    tol = _float(summary.get("tolerance"))
    if tol:
        ax.axhline(tol, color="tab:red", ls="--", lw=1, label=f"tolerance τ = {tol:.3g}")
        shown.append(tol)
    final = _float(summary.get("relative_error"))
    if final and steps.size:
        ax.plot([steps[-1]], [final], "o", color="tab:blue", mfc="white", label="final (infer)")
        shown.append(final)
    test = _float(summary.get("test_error"))
    if test and steps.size:
        acc = _float(summary.get("accuracy"))
        label = "held-out test (infer)" + (f", accuracy {100 * acc:.1f} %" if acc is not None else "")
        ax.plot([steps[-1]], [test], "s", color="tab:green", label=label)
        shown.append(test)
    _log_x(ax, steps)
    set_log_axis(ax, "y", shown)
    ax.set_xlabel("step")
    ax.set_ylabel("relative error C/C₀" if "rel_err" in t else "error C (V²)")
    ax.set_title(f"{title}: error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


Reference = tuple[str, Table, dict]
"""A λ 0 reference run: its folder name, its current telemetry, its summary."""


def plot_power(t: Table, summary: dict, title: str, path: Path,
               reference: Reference | None = None) -> Path:
    """Board-reported power against step (named by its source), the emulator's true power
    before and after, and the λ 0 reference run of the same board when there is one."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    ok = t["pwr"] > 0
    shown = list(t["pwr"][ok] * UW)
    ax.plot(steps[ok], t["pwr"][ok] * UW, color="tab:orange", lw=1.6,
            label=f"board-reported power ({power_source_label(summary)})")
    tp0, tp = _float(summary.get("initial_true_power")), _float(summary.get("true_power"))
    if tp0 and tp and steps.size:
        ax.plot([steps[0], steps[-1]], [tp0 * UW, tp * UW], "D", color="tab:purple", ls="",
                label="true power (emulator), before / after training")
        shown += [tp0 * UW, tp * UW]
    elif steps.size and not tp:
        ax.plot([], [], " ", label="true power: not available on hardware")
    if reference is not None:
        name, rt, rs = reference
        rsteps = rt["step"].astype(float)
        rok = rt["pwr"] > 0
        ax.plot(rsteps[rok], rt["pwr"][rok] * UW, color="0.45", lw=1.3, ls="--",
                label=f"λ 0 reference, board-reported ({name})")
        shown += list(rt["pwr"][rok] * UW)
        rtp = _float(rs.get("true_power"))
        if rtp and rsteps.size:
            ax.plot([rsteps[-1]], [rtp * UW], "D", color="0.45", mfc="white",
                    label="λ 0 reference, true power after training")
            shown.append(rtp * UW)
    _log_x(ax, np.concatenate([steps, reference[1]["step"].astype(float)]) if reference else steps)
    set_log_axis(ax, "y", shown)
    ax.set_xlabel("step")
    ax.set_ylabel("power (µW)")
    ax.set_title(f"{title}: power")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_lambda(t: Table, title: str, path: Path) -> Path:
    """λ against step: a log axis for the positive values with 0 below them (symmetric log
    whose linear part reaches the smallest positive λ), ticks inside the data range."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = t["step"].astype(float)
    lam = t["lam"].astype(float)
    pos = lam[np.isfinite(lam) & (lam > 0)]
    ax.step(steps, lam, where="post", color="tab:green", lw=1.4,
            label="λ (power weight)" if pos.size else "λ = 0 throughout (no power term)")
    if not pos.size:
        ax.set_yticks([0.0])
        ax.set_ylim(-1.0, 1.0)
    else:
        lo, hi = float(pos.min()), float(pos.max())
        ticks = log_ticks(lo, hi, max_ticks=5)
        labels = [tick_label(v) for v in ticks]
        if (lam == 0).any():
            # the linear part (0 .. smallest λ) about a quarter of the log part's height:
            # a narrow λ range (the controller's ×1.05 steps) is then not squeezed flat
            span = math.log10(hi * 1.6 / lo)
            ax.set_yscale("symlog", linthresh=lo, linscale=max(0.05, min(1.0, span / 3)))
            ticks, labels = [0.0, *ticks], ["0", *labels]
            ax.set_ylim(-0.25 * lo, hi * 1.6)
        else:
            ax.set_yscale("log")
            ax.set_ylim(lo / 1.6, hi * 1.6)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FixedFormatter(labels))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("λ (dimensionless)")
    ax.set_title(f"{title}: power weight λ")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def plot_tradeoff(t: Table, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    rel = t["rel_err"] if "rel_err" in t else t["err"]
    ok = (rel > 0) & (t["pwr"] > 0)
    x, y, s = rel[ok], t["pwr"][ok] * UW, t["step"][ok]
    ax.plot(x, y, color="0.75", lw=0.8, zorder=1)
    sc = ax.scatter(x, y, c=s, cmap="viridis", s=14, zorder=2)
    if x.size:
        ax.plot(x[0], y[0], "o", mfc="none", mec="black", ms=9, label="start")
        ax.plot(x[-1], y[-1], "*", color="tab:red", ms=11, label="end")
    fig.colorbar(sc, ax=ax, label="step")
    set_log_axis(ax, "x", x)
    set_log_axis(ax, "y", y)
    ax.set_xlabel("relative error C/C₀" if "rel_err" in t else "error C (V²)")
    ax.set_ylabel("board-reported power (µW)")
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


def _reference(run_dir: Path) -> Reference | None:
    """The λ 0 reference run beside ``run_dir`` (see
    :func:`~.comparison.lambda0_reference`) with its telemetry, or None."""
    from .comparison import lambda0_reference

    ref = lambda0_reference(run_dir)
    if ref is None:
        return None
    try:
        tables = run_tables(ref)
    except Exception:  # noqa: BLE001 - a damaged neighbour only costs the reference line
        return None
    rt = current_telemetry(tables)
    if not rt or "pwr" not in rt or rt["step"].size == 0:
        return None
    return ref.name, rt, _summary(tables)


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
               plot_power(t, summary, title, out / "power.png", _reference(rf.path)),
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


def plot_compare(facts: list, tolerance: float | None, path: str | Path) -> Path:
    """``learnboard compare --plot``: C/C0 (top) and board-reported power (bottom) against
    step, one colour per run (:class:`~.comparison.RunFacts`), the tolerance as a dashed line
    and each run's true power after training as a diamond."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7.0, 7.0), sharex=True)
    errs: list[float] = []
    pows: list[float] = []
    reached = False
    steps_all: list[float] = []
    for i, f in enumerate(facts):
        colour = f"C{i % 10}"
        s = np.asarray(f.series.get("step", []), dtype=float)
        e = np.asarray(f.series.get("rel_err", []), dtype=float)
        p = np.asarray(f.series.get("pwr", []), dtype=float) * UW
        label = f"{f.run}: {f.schedule}"
        ok = e > 0
        a1.plot(s[ok], e[ok], color=colour, lw=1.4, label=label)
        ok = p > 0
        a2.plot(s[ok], p[ok], color=colour, lw=1.4, label=f"{f.run}: board-reported ({f.power_source})")
        errs += list(e[e > 0])
        pows += list(p[p > 0])
        steps_all += list(s)
        if f.true_power and s.size:
            a2.plot([s[-1]], [f.true_power * UW], "D", color=colour, mec="black",
                    label=f"{f.run}: true power after training")
            pows.append(f.true_power * UW)
        if f.steps_to_reach is not None and tolerance:
            a1.plot([f.steps_to_reach], [tolerance], "|", color=colour, ms=14, mew=2)
            reached = True
    if tolerance:
        a1.axhline(tolerance, color="tab:red", ls="--", lw=1, label=f"tolerance τ = {tolerance:.3g}")
        errs.append(tolerance)
        if reached:  # one legend entry for the runs' marks, in black
            a1.plot([], [], "|", color="black", ms=10, mew=2, label="first frame at or under τ (run's colour)")
    steps = np.asarray(steps_all)
    if steps.size and steps.min() > 0:
        set_log_axis(a2, "x", steps, max_ticks=7)
    set_log_axis(a1, "y", errs)
    set_log_axis(a2, "y", pows)
    a1.set_ylabel("relative error C/C₀")
    a2.set_ylabel("power (µW)")
    a2.set_xlabel("step")
    a1.set_title("runs compared: error and power")
    for ax in (a1, a2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, Path(path), "--plot")
