"""The report's figures (matplotlib, Agg). Each function writes one PNG and returns its path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from learnboard.studies.paper.analysis import FLOOR

POWER_LABEL = "power P = ½ Σ k ΔV² (W for k in S, ΔV in V)"
ERROR_LABEL = "relative error C/C0"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3,
                         "figure.dpi": 110, "savefig.bbox": "tight"})
    return plt


def _lam_x(lams: list[float]) -> tuple[dict[float, float], float]:
    """x position per lambda: lambda itself, 0 drawn one decade left of the smallest."""
    pos = [x for x in lams if x > 0]
    zero_at = (min(pos) / 10) if pos else 1e-11
    return {lam: (lam if lam > 0 else zero_at) for lam in lams}, zero_at


def _zero_tick(ax, zero_at: float, top: float) -> None:
    ticks = [t for t in ax.get_xticks() if zero_at * 5 < t <= top * 1.01]
    ax.set_xticks([zero_at, *ticks])
    ax.set_xticklabels(["0"] + [f"$10^{{{int(round(math.log10(t)))}}}$" for t in ticks])
    ax.set_xlim(zero_at / 3, max(top, zero_at * 10) * 3)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def error_power_vs_lambda(lam_rows: list[dict], networks: list[str], guide: float, path: Path) -> Path:
    """C/C0 and P against lambda per network (median over seeds, band min..max) + λ² guide."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    lams = sorted({t["lam"] for t in lam_rows})
    xpos, zero_at = _lam_x(lams)
    for net in networks:
        t = sorted((r for r in lam_rows if r["network"] == net), key=lambda r: r["lam"])
        if not t:
            continue
        x = [xpos[r["lam"]] for r in t]
        for ax, key in ((a1, "rel_error"), (a2, "power")):
            med = np.maximum([r[f"{key}_median"] for r in t], FLOOR)
            line, = ax.plot(x, med, "o-", ms=4, label=net)
            ax.fill_between(x, np.maximum([r[f"{key}_min"] for r in t], FLOOR),
                            np.maximum([r[f"{key}_max"] for r in t], FLOOR),
                            color=line.get_color(), alpha=0.15)
    gl = np.array([x for x in lams if 0 < x <= 1e-6])
    if gl.size and guide > 0:
        a1.plot(gl, guide * gl**2, "k--", lw=1.5, label=f"λ² guide: {guide:.3g}·λ²")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("power weight λ (dimensionless)")
        _zero_tick(ax, zero_at, max(lams))
    a1.axhline(FLOOR, color="grey", lw=0.8, ls=":")
    a1.set_ylabel(ERROR_LABEL + f" (floored at {FLOOR:g})")
    a2.set_ylabel(POWER_LABEL)
    a1.set_title("Error grows as λ² at small λ")
    a2.set_title("Power of the learned solution falls with λ")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    return _save(fig, path)


def initial_conditions(ic_rows: list[dict], path: Path) -> Path:
    """P against C/C0 per initial condition (points = λ) and P at λ = 0 per initial condition."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = list(dict.fromkeys(r["init"] for r in ic_rows))
    lams = sorted({r["lam"] for r in ic_rows})
    for n, label in enumerate(labels):
        t = sorted((r for r in ic_rows if r["init"] == label), key=lambda r: r["lam"])
        a1.plot(np.maximum([r["rel_error_median"] for r in t], FLOOR),
                [r["power_median"] for r in t], "o-", label=label)
        for r in t if n == 0 else []:  # one line labelled: the others follow the same order
            a1.annotate(f"λ={r['lam']:g}", (max(r["rel_error_median"], FLOOR), r["power_median"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel(ERROR_LABEL + f" (floored at {FLOOR:g})")
    a1.set_ylabel(POWER_LABEL)
    a1.set_title("Initial conditions: power at equal error")
    a1.legend(fontsize=8, title="start; points: λ = " + ", ".join(f"{x:g}" for x in lams),
              title_fontsize=8)
    zero = [next((r for r in ic_rows if r["init"] == lb and r["lam"] == 0), None) for lb in labels]
    bars = [(lb, r) for lb, r in zip(labels, zero, strict=True) if r is not None]
    if bars:
        a2.bar([b[0] for b in bars], [b[1]["power_median"] for b in bars], color="tab:blue")
        a2.set_yscale("log")
        top = max(b[1]["power_median"] for b in bars)
        a2.set_ylim(top=top * 3)
        for i, (_, r) in enumerate(bars):
            a2.annotate(f"P {r['power_median']:.3g}\nC/C0 {r['rel_error_median']:.1e}", (i, r["power_median"]),
                        ha="center", va="bottom", fontsize=8)
        a2.set_ylabel("power P at λ = 0 (W for k in S)")
        a2.set_xlabel("initial conductances")
        a2.set_title("λ = 0: equal (vanishing) error, lower power")
    return _save(fig, path)


def tradeoff(lam_rows: list[dict], scan_rows: list[dict], path: Path) -> Path:
    """Error–power trade-off: each point a λ, median over seeds and networks, bars min..max."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    allr = sorted((t for t in lam_rows if t["network"] == "all"), key=lambda t: t["lam"])
    ax.scatter(np.maximum([r["relative_error"] for r in scan_rows], FLOOR),
               [r["power"] for r in scan_rows], s=8, color="grey", alpha=0.4,
               label="single runs (networks × seeds)")
    x = np.maximum([t["rel_error_median"] for t in allr], FLOOR)
    y = np.array([t["power_median"] for t in allr])
    xerr = [x - np.maximum([t["rel_error_min"] for t in allr], FLOOR),
            np.maximum([t["rel_error_max"] for t in allr], FLOOR) - x]
    yerr = [y - [t["power_min"] for t in allr], [t["power_max"] for t in allr] - y]
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o-", color="tab:red", capsize=2,
                label=(f"median over {max(t['runs'] for t in allr)} runs (bars: min..max)"
                       if allr and max(t["runs"] for t in allr) > 1 else "one run per λ"))
    for t, xi, yi in zip(allr, x, y, strict=True):
        ax.annotate(f"λ={t['lam']:g}", (xi, yi), fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(ERROR_LABEL + f" (floored at {FLOOR:g})")
    ax.set_ylabel(POWER_LABEL)
    ax.set_title("Error–power trade-off (each point one λ)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def tolerance(curves: dict[str, list], tol_rows: list[dict], networks: list[str],
              history: dict | None, tau_hist: float | None, path: Path) -> Path:
    """Controller tail means against the fixed-λ curve of the same task, and one run's history."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for net in networks:
        t = curves.get(net, [])
        line, = a1.plot(np.maximum([c for _, c, _ in t], FLOOR), [p for _, _, p in t], "o-",
                        ms=3, alpha=0.7, label=f"{net}: fixed λ")
        tt = [r for r in tol_rows if r["network"] == net]
        a1.plot([r["tail_rel_error"] for r in tt], [r["tail_power"] for r in tt], "*",
                ms=12, color=line.get_color(), mec="k", label=f"{net}: tolerance controller")
    for tau in sorted({r["tau"] for r in tol_rows}):
        a1.axvline(tau, color="grey", lw=0.7, ls=":")
        a1.text(tau, 0.03, f" τ={tau:g}", rotation=90, fontsize=7, color="grey",
                transform=a1.get_xaxis_transform())
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel(ERROR_LABEL + " (controller: mean over the last 10 % of steps)")
    a1.set_ylabel(POWER_LABEL)
    a1.set_title("Tolerance controller vs fixed λ at equal error")
    a1.legend(fontsize=7)
    if history:
        s = history["step"]
        a2.plot(s, np.maximum(history["relative_error"], FLOOR), lw=0.6, label="C/C0")
        a2.axhline(tau_hist, color="k", ls="--", lw=1, label=f"τ = {tau_hist:g}")
        a2.set_yscale("log")
        a2.set_xlabel("training step")
        a2.set_ylabel(ERROR_LABEL)
        b = a2.twinx()
        b.plot(s, history["lam"], color="tab:red", lw=0.6, label="λ (controller)")
        b.set_yscale("symlog", linthresh=1e-10)
        b.set_ylabel("λ set by the controller", color="tab:red")
        a2.set_title(f"One controller run (τ = {tau_hist:g}, {networks[0]})")
        h1, l1 = a2.get_legend_handles_labels()
        h2, l2 = b.get_legend_handles_labels()
        a2.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    return _save(fig, path)


LAMBDA_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "h")


def board(board_rows: list[dict], histories: dict[str, dict], path: Path) -> Path:
    """Board profile: physical power against error per λ, nominal vs imperfect; histories.

    One colour per condition (the network label: nominal, imperfect, emulated) in both
    panels; λ is the marker shape on the left (no text labels to collide) and the line
    style on the right. ``histories`` keys are ``"<condition>, <start>"``."""
    from matplotlib.lines import Line2D

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.6))
    conditions = list(dict.fromkeys([r["network"] for r in board_rows]
                                    + [k.split(", ", 1)[0] for k in histories]))
    colour = {c: f"C{i % 10}" for i, c in enumerate(conditions)}
    lams = sorted({r["lam"] for r in board_rows if r["init"] == "uniform"})
    marker = {lam: LAMBDA_MARKERS[i % len(LAMBDA_MARKERS)] for i, lam in enumerate(lams)}
    for net in dict.fromkeys(r["network"] for r in board_rows):
        t = sorted((r for r in board_rows if r["network"] == net and r["init"] == "uniform"),
                   key=lambda r: r["lam"])
        a1.plot([r["rel_error_median"] for r in t], [r["power_uW_median"] for r in t], "-",
                color=colour[net], lw=1.2, alpha=0.8)
        for r in t:
            a1.plot([r["rel_error_median"]], [r["power_uW_median"]], marker[r["lam"]], ms=7,
                    color=colour[net], mec="black", mew=0.6)
        for r in (r for r in board_rows if r["network"] == net and r["init"] == "low"):
            a1.plot([r["rel_error_median"]], [r["power_uW_median"]], "*", ms=12,
                    color=colour[net], mec="black", mew=0.6)
    handles = [Line2D([], [], color=colour[c], lw=2, label=c) for c in conditions]
    handles += [Line2D([], [], ls="", marker=marker[lam], color="0.6", mec="black",
                       label=f"λ = {lam:g}, mid-range gates") for lam in lams]
    if any(r["init"] == "low" for r in board_rows):
        handles.append(Line2D([], [], ls="", marker="*", ms=10, color="0.6", mec="black",
                              label="λ = 0, low gates"))
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel(ERROR_LABEL + " (measured by the board)")
    a1.set_ylabel("physical power Σ I ΔV (µW)")
    a1.set_title("Transistor board: power vs error")
    a1.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    styles = ("-", "--", ":", "-.")
    starts = list(dict.fromkeys(k.split(", ", 1)[1].split(" (")[0] if ", " in k else k for k in histories))
    style = {st: styles[i % len(styles)] for i, st in enumerate(starts)}
    for label, h in histories.items():
        cond, _, start = label.partition(", ")
        a2.plot(h["step"], h["power_watts"] * 1e6, color=colour[cond],
                ls=style[start.split(" (")[0]] if start else "-", lw=1.5, label=label)
    a2.set_xlabel("training step")
    a2.set_ylabel("power (µW)")
    a2.set_yscale("log")
    a2.set_title("Power during training (Σ I ΔV; emulated: as the board reports it)", fontsize=10)
    a2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return _save(fig, path)


def noise(noise_rows: list[dict], path: Path) -> Path:
    """Training and clean-target error against λ per target-noise level."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    lams = sorted({r["lam"] for r in noise_rows})
    xpos, zero_at = _lam_x(lams)
    for level in sorted({r["noise"] for r in noise_rows}):
        t = sorted((r for r in noise_rows if r["noise"] == level), key=lambda r: r["lam"])
        x = [xpos[r["lam"]] for r in t]
        line, = ax.plot(x, np.maximum([r["relative_error"] for r in t], FLOOR), "o-",
                        label=f"noise σ={level:g} V: training targets")
        if level > 0:
            ax.plot(x, np.maximum([r["clean_relative_error"] for r in t], FLOOR), "s--",
                    color=line.get_color(), label=f"noise σ={level:g} V: clean targets")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _zero_tick(ax, zero_at, max(lams))
    ax.set_xlabel("power weight λ (dimensionless)")
    ax.set_ylabel(ERROR_LABEL + f" (floored at {FLOOR:g})")
    ax.set_title("Noisy targets: error on the noisy and on the clean targets")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def energy(histories: dict[str, dict], ic_rows: list[dict], path: Path) -> Path:
    """Power during training per initial condition, and training energy per init and λ."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for label, h in histories.items():
        a1.plot(h["step"], h["power"], label=label)
    a1.set_xscale("symlog", linthresh=100)
    a1.set_yscale("log")
    a1.set_xlabel("training step")
    a1.set_ylabel(POWER_LABEL)
    a1.set_title("Power during training (λ = 0)")
    a1.legend(fontsize=8)
    labels = list(dict.fromkeys(r["init"] for r in ic_rows))
    lams = sorted({r["lam"] for r in ic_rows})
    w = 0.8 / max(1, len(lams))
    for j, lam in enumerate(lams):
        vals = [next((r["energy_median"] for r in ic_rows if r["init"] == lb and r["lam"] == lam),
                     np.nan) for lb in labels]
        a2.bar(np.arange(len(labels)) + j * w, vals, w, label=f"λ={lam:g}")
    a2.set_xticks(np.arange(len(labels)) + w * (len(lams) - 1) / 2)
    a2.set_xticklabels(labels)
    a2.set_yscale("log")
    a2.set_ylabel("training energy Σ_steps P (power × steps)")
    a2.set_title("Energy spent during training")
    a2.legend(fontsize=8)
    return _save(fig, path)


def power_gradient(histories: dict[str, dict], runs: list[dict], path: Path) -> Path:
    """Left: cosine between the transistor rule's local power term and the exact
    dP_free/dVg along training (solid; dashed: over the gates above the floor only) per λ.
    Right: free power against error at the end, local term vs exact gradient, one point
    per λ."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for n, (label, h) in enumerate(histories.items()):
        c = f"C{n % 10}"
        a1.plot(h["step"], h["cos_free"], "-", color=c, lw=1.4, label=label)
        a1.plot(h["step"], h["cos_free_above_floor"], "--", color=c, lw=1.0)
    a1.set_xlabel("training step")
    a1.set_ylabel("cos(local term, exact dP_free/dVg)")
    a1.set_title("Local power term vs exact gradient (dashed: gates above the floor)",
                 fontsize=9)
    a1.legend(fontsize=7, loc="lower left")
    markers = {"local": "o-", "exact": "s--", "exact-total": "^:"}
    for n, seed in enumerate(sorted({r["seed"] for r in runs})):
        for term, style in markers.items():
            t = sorted((r for r in runs if r["seed"] == seed and r["term"] == term
                        and r["lam"] > 0), key=lambda r: r["lam"])
            if t:
                a2.plot([r["rel_error"] for r in t], [r["power_free_uW"] for r in t], style,
                        color=f"C{n}", label=f"seed {seed}, {term}")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel(ERROR_LABEL)
    a2.set_ylabel("free power Σ I ΔV (µW)")
    a2.set_title("Power reached vs error (one point per λ)", fontsize=10)
    a2.legend(fontsize=7)
    return _save(fig, path)
