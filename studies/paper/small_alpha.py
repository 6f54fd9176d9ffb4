"""The small-α check of the strong-λ distributions: same α × steps, α halved until the
distribution over replicas stops moving (or a step budget is hit).

Coupled learning is a gradient flow only in the limit of small α; at a fixed α × steps a
result that still changes when α is halved depends on the discretisation, not on the
physics. For each λ, level i runs ``replicas`` perturbed-k0 replicas at ``α0 / 2**i`` for
``S0 * 2**i`` steps. After each halving :func:`moved` compares the new distribution with
the previous one; the λ is *converged* at the previous α when neither the median nor the
IQR width of log10 C/C0 and of log10 P moved more than the tolerance (:func:`tolerance`).
Every level is one sweep (:mod:`learnboard.studies.sweep`) into its own folder, so runs
are resumable and run on the report's worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnboard.engine.steady import FLOOR

KEYS = ("relative_error", "power")
"""The outcomes compared between halvings: C/C0 and P (log10 of each)."""
SHIFT_OF_IQR = 0.5
"""A median or IQR width moved when it changed by more than this fraction of the pooled IQR ..."""
MIN_SHIFT = math.log10(1.1)
"""... and by more than this many decades (10 %): identical replicas still have a tolerance."""


@dataclass
class AlphaPlan:
    """The grid of the check: λ values, replicas per level, S0 at α0, and the budget
    (``max_halvings``: the last level runs α0 / 2**max_halvings for S0 · 2**max_halvings)."""

    lams: list[float] = field(default_factory=lambda: [1e-6, 1e-5, 1e-4])
    replicas: int = 10
    perturb: float = 1e-12
    steps: int = 100_000
    alpha0: float = 0.5
    max_halvings: int = 3

    @classmethod
    def of(cls, quick: bool, steps: int, perturb: float) -> AlphaPlan:
        """The report's plan: ``quick`` has fewer replicas and halvings."""
        if quick:  # ≤ ~30 s CPU on 2 workers: half the steps, 4 replicas, 2 halvings
            return cls(replicas=4, perturb=perturb, steps=steps // 2, max_halvings=2)
        return cls(perturb=perturb, steps=steps)


def _logs(values: Sequence[float]) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(values, dtype=float), FLOOR))


def _width(x: np.ndarray) -> float:
    return float(np.quantile(x, 0.75) - np.quantile(x, 0.25))


def tolerance(a: Sequence[float], b: Sequence[float]) -> float:
    """How far (decades) a median or IQR width may move between two levels:
    ``max(SHIFT_OF_IQR × IQR of the pooled log values, MIN_SHIFT)``."""
    return max(SHIFT_OF_IQR * _width(np.concatenate([_logs(a), _logs(b)])), MIN_SHIFT)


def moved(a: Sequence[float], b: Sequence[float]) -> dict:
    """Compare two samples of one positive outcome (log10 scale): the median shift, the change
    of the IQR width, the tolerance and ``moved`` (either change above the tolerance)."""
    la, lb = _logs(a), _logs(b)
    tol = tolerance(a, b)
    shift = abs(float(np.median(lb) - np.median(la)))
    widen = abs(_width(lb) - _width(la))
    return {"shift": shift, "widen": widen, "tolerance": tol, "moved": shift > tol or widen > tol}


def level_summary(rows: Sequence[dict]) -> dict:
    """Median and IQR of C/C0 and P over one level's successful replicas (also the median
    fraction of edges at k_min and how many runs were steady)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    out: dict = {"runs": len(ok), "failed": len(rows) - len(ok)}
    for k in KEYS:
        v = np.array([r[k] for r in ok], dtype=float)
        if v.size:
            out[k] = v
            out[f"{k}_median"] = float(np.median(v))
            out[f"{k}_q25"], out[f"{k}_q75"] = (float(np.quantile(v, q)) for q in (0.25, 0.75))
    fracs = [r["frac_at_min"] for r in ok if r.get("frac_at_min") is not None]
    out["frac_at_min_median"] = float(np.median(fracs)) if fracs else None
    out["steady_runs"] = sum(1 for r in ok if r.get("steady_state") is True)
    return out


def verdict(levels: Sequence[dict]) -> tuple[str, float | None]:
    """("converged", α) when the last halving moved nothing, ("moving", the last α) when it
    moved, ("unchecked", α) with fewer than two levels (no halving, or a level failed)."""
    if len(levels) < 2 or levels[-1]["moved"] is None:
        return "unchecked", levels[-1]["alpha"] if levels else None
    if not levels[-1]["moved"]:
        return "converged", levels[-2]["alpha"]
    return "moving", levels[-1]["alpha"]


def run_check(network: dict, ap: AlphaPlan, folder: Path, *, workers: int | None = None,
              scheduler=None, progress: bool = True) -> list[dict]:
    """Run the halvings for every λ of ``ap`` on ``network`` (a sweep network entry with its
    task seed); returns one row per (λ, level) with the comparison to the level before."""
    from learnboard.studies.sweep import expand, run_sweep

    levels: dict[float, list[dict]] = {lam: [] for lam in ap.lams}
    active = list(ap.lams)
    for i in range(ap.max_halvings + 1):
        if not active:
            break
        alpha, steps = ap.alpha0 / 2 ** i, ap.steps * 2 ** i
        spec = {"steps": steps, "learning": {"alpha": alpha},
                "grid": {"lam": active, "replicas": ap.replicas, "perturb": ap.perturb},
                "networks": [network]}
        runs = expand(spec)
        res = run_sweep(runs, folder, workers=workers, scheduler=scheduler, progress=progress,
                        label=f"paper: small α (α {alpha:g})")
        by_id = {r["id"]: r for r in res.rows}
        for lam in list(active):
            rows = [by_id[r["id"]] for r in runs if r["lam"] == lam and r["id"] in by_id]
            lv = {"lam": lam, "level": i, "alpha": alpha, "steps": steps,
                  "alpha_steps": alpha * steps, **level_summary(rows)}
            prev = levels[lam][-1] if levels[lam] else None
            if prev is not None and lv["runs"] and prev["runs"]:
                cmp = {k: moved(prev[k], lv[k]) for k in KEYS}
                lv.update({f"{k}_shift": c["shift"] for k, c in cmp.items()})
                lv.update({f"{k}_widen": c["widen"] for k, c in cmp.items()})
                lv.update({f"{k}_tolerance": c["tolerance"] for k, c in cmp.items()})
                lv["moved"] = any(c["moved"] for c in cmp.values())
            else:
                lv["moved"] = None
            levels[lam].append(lv)
            if lv["moved"] is False or not lv["runs"]:
                active.remove(lam)
    out = []
    for lvs in levels.values():
        state, alpha = verdict(lvs)
        for lv in lvs:
            out.append({k: v for k, v in lv.items() if k not in KEYS}
                       | {"verdict": state, "verdict_alpha": alpha})
    return out


def verdict_text(state: str, alpha: float | None) -> str:
    """The verdict as the report says it."""
    if state == "converged":
        return f"converged at α = {alpha:g}"
    if state == "unchecked":
        return f"not checked (one level, α = {alpha:g})" if alpha is not None else "not run"
    return f"still moving at α = {alpha:g} (budget)"


def figure(rows: Sequence[dict], path: Path) -> Path:
    """C/C0 and P (median, IQR bars) against α, one line per λ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for lam in sorted({r["lam"] for r in rows}):
        sel = sorted((r for r in rows if r["lam"] == lam and r.get("runs")),
                     key=lambda r: -r["alpha"])
        a = np.array([r["alpha"] for r in sel])
        for ax, k in zip(axes, KEYS, strict=True):
            m = np.array([r[f"{k}_median"] for r in sel])
            lo = m - np.array([r[f"{k}_q25"] for r in sel])
            hi = np.array([r[f"{k}_q75"] for r in sel]) - m
            ax.errorbar(a, m, yerr=[lo, hi], marker="o", capsize=3, label=f"λ = {lam:g}")
    from matplotlib.ticker import NullLocator

    alphas = sorted({r["alpha"] for r in rows})
    for ax, name in zip(axes, ("C/C0", "P"), strict=True):
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())  # one labelled tick per α run
        ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
        ax.set_yscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("α (steps × 2 per halving: α × steps fixed)")
        ax.set_ylabel(f"{name} (median, IQR)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("small-α limit of the strong-λ distributions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(rows: Sequence[dict], ap: AlphaPlan, network: str,
             md_table: Callable[[list[dict], list[tuple[str, str]]], str]) -> list[str]:
    """The report section (empty without rows)."""
    if not rows:
        return []

    def iqr(r, k):
        return f"{r[f'{k}_q25']:.3g}–{r[f'{k}_q75']:.3g}" if r.get("runs") else "–"

    shown = [{**r, "c_iqr": iqr(r, "relative_error"), "p_iqr": iqr(r, "power"),
              "moved_txt": {None: "–", True: "yes", False: "no"}[r["moved"]],
              "steady": f"{r['steady_runs']}/{r['runs']}",
              "shift": (f"{r['relative_error_shift']:.2f} / {r['power_shift']:.2f} "
                        f"(tol {r['relative_error_tolerance']:.2f} / {r['power_tolerance']:.2f})"
                        if r["moved"] is not None else "–")} for r in rows]
    verdicts = {r["lam"]: verdict_text(r["verdict"], r["verdict_alpha"]) for r in rows}
    return [
        "## Small-α limit of the strong-λ distributions\n",
        f"Coupled learning is a gradient flow only for small α. Each λ runs {ap.replicas} "
        f"replicas (k0 perturbed by ±{ap.perturb:g}) on {network}'s first task at α "
        f"{ap.alpha0:g} for {ap.steps} steps, then α/2 for twice the steps, and so on (α × "
        f"steps fixed), at most {ap.max_halvings} halvings (the budget). A halving *moved* "
        "the distribution when the median or the IQR width of log10 C/C0 or of log10 P "
        f"changed by more than max({SHIFT_OF_IQR:g} × the IQR of both levels' pooled log "
        f"values, {MIN_SHIFT:.3f} decades = 10 %); a λ is converged at the α before the first "
        "halving that moved nothing. Shifts in decades (C/C0 / P); *at k_min*: median fraction of "
        "edges at k_min. Table: `small_alpha.csv`; its runs (not counted in the header): "
        "`small_alpha/results.csv`, `small_alpha/runs/`.\n",
        "![small alpha](fig9_small_alpha.png)\n",
        "Verdicts: " + "; ".join(f"λ {lam:g}: {v}" for lam, v in verdicts.items()) + ".\n",
        md_table(shown, [("lam", "λ"), ("alpha", "α"), ("steps", "steps"),
                         ("relative_error_median", "median C/C0"), ("c_iqr", "C/C0 IQR"),
                         ("power_median", "median P"), ("p_iqr", "P IQR"),
                         ("frac_at_min_median", "at k_min"), ("steady", "steady"),
                         ("shift", "median shift (tol)"), ("moved_txt", "moved")]),
    ]
