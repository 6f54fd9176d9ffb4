"""Tables behind the report's figures, computed from the sweep rows (plain dicts)."""

from __future__ import annotations

import math

import numpy as np

FLOOR = 1e-20  # C/C0 below this is shown at the floor (the reference results: "< 1e-20")


def pick(rows: list[dict], **conds) -> list[dict]:
    """Successful rows whose columns equal ``conds`` (floats compared with rel. 1e-9)."""
    out = []
    for r in rows:
        if r.get("status") != "ok":
            continue
        ok = True
        for k, v in conds.items():
            a = r.get(k)
            if v is None or a is None:
                ok = a is None and v is None
            elif isinstance(v, (list, tuple, set)):
                ok = a in v
            elif isinstance(v, str) or isinstance(a, str) or isinstance(v, bool):
                ok = a == v
            else:
                ok = math.isclose(float(a), float(v), rel_tol=1e-9)
            if not ok:
                break
        if ok:
            out.append(r)
    return out


def stats(values) -> tuple[float, float, float]:
    """(median, min, max) of finite values; NaNs when there are none."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return (math.nan,) * 3
    return float(np.median(v)), float(v.min()), float(v.max())


def verdict_counts(sel: list[dict]) -> dict:
    """Of the runs ``sel``: how many reached a steady state, how many ended below the
    floating-point floor, and the most bursts one had (learnboard.engine.steady).
    Rows from sweeps made before the verdict existed count as not judged."""
    judged = [r for r in sel if r.get("steady_state") is not None]
    return {"steady_runs": sum(1 for r in judged if r["steady_state"]),
            "judged_runs": len(judged),
            "below_floor_runs": sum(1 for r in sel if r.get("below_floor")),
            "bursts_max": max((r.get("bursts") or 0 for r in judged), default=None)}


def steady_label(t: dict) -> str:
    """``"3/5"`` steady runs of the judged ones (``"--"`` when none was judged)."""
    return f"{t['steady_runs']}/{t['judged_runs']}" if t.get("judged_runs") else "--"


def grows(values: list[float | None], floor: float) -> tuple[bool, list[int]]:
    """Does a sequence grow step by step? Returns (verdict, indices i where values[i+1] does
    not exceed values[i]). Two neighbours both below ``floor`` are rounding noise: not a break."""
    breaks = [i for i, (a, b) in enumerate(zip(values, values[1:], strict=False))
              if not (b > a or (abs(a) < floor and abs(b) < floor))]
    return not breaks, breaks


def lambda_table(rows: list[dict], networks: list[str], lams: list[float], steps: int) -> list[dict]:
    """Per network and lambda: median/min/max over seeds of C/C0, P and training energy."""
    out = []
    for net in [*networks, "all"]:
        for lam in lams:
            sel = pick(rows, lam=lam, steps=steps, init="uniform", k0=1.0, tolerance=None,
                       noise=0.0, network=networks if net == "all" else net)
            if not sel:
                continue
            c, p, e = (stats(r[k] for r in sel) for k in ("relative_error", "power", "energy"))
            out.append({"network": net, "lam": lam, "runs": len(sel),
                        "rel_error_median": c[0], "rel_error_min": c[1], "rel_error_max": c[2],
                        "power_median": p[0], "power_min": p[1], "power_max": p[2],
                        "energy_median": e[0], **verdict_counts(sel)})
    return out


def init_label(r: dict) -> str:
    return "low (10 k_min)" if r["init"] == "low" else f"k0 {r['k0']:g}"


def initial_table(rows: list[dict], networks: list[str], lams: list[float], steps: int,
                  seeds: dict[str, int]) -> list[dict]:
    """Per init mode and lambda: median over networks (task ``seeds[network]``) of C/C0, P, energy."""
    groups: dict[tuple[str, float], list[dict]] = {}
    seen = set()
    for r in pick(rows, steps=steps, tolerance=None, noise=0.0, network=networks):
        if r["seed"] != seeds.get(r["network"]) or r["id"] in seen:
            continue
        seen.add(r["id"])
        if r["lam"] in lams or any(math.isclose(r["lam"], x) for x in lams):
            groups.setdefault((init_label(r), r["lam"]), []).append(r)
    out = []
    for (label, lam), sel in sorted(groups.items(), key=lambda kv: (_init_order(kv[0][0]), kv[0][1])):
        c, p, e = (stats(r[k] for r in sel) for k in ("relative_error", "power", "energy"))
        out.append({"init": label, "lam": lam, "runs": len(sel), "rel_error_median": c[0],
                    "power_median": p[0], "power_min": p[1], "power_max": p[2],
                    "energy_median": e[0], **verdict_counts(sel)})
    return out


def _init_order(label: str) -> float:
    return 1e9 if label.startswith("low") else -float(label.split()[1])


def interp_power(curve: list[tuple[float, float]], err: float) -> float:
    """Power of the fixed-lambda curve (C/C0, P) at error ``err`` (log-log interpolation)."""
    pts = sorted((max(c, FLOOR), p) for c, p in curve if np.isfinite(c) and np.isfinite(p) and p > 0)
    if len(pts) < 2:
        return math.nan
    x = np.log10([c for c, _ in pts])
    y = np.log10([p for _, p in pts])
    lx = math.log10(max(err, FLOOR))
    if lx < x[0] or lx > x[-1]:
        return math.nan
    return float(10 ** np.interp(lx, x, y))


def fixed_curve(rows: list[dict], network: str, seed: int | None, steps: int
                ) -> list[tuple[float, float, float]]:
    """(lambda, C/C0, P) of the fixed-lambda runs of one task, sorted by lambda."""
    sel = pick(rows, network=network, seed=seed, steps=steps, tolerance=None, init="uniform",
               k0=1.0, noise=0.0)
    pts = {r["lam"]: (r["lam"], r["relative_error"], r["power"]) for r in sel}
    return [pts[k] for k in sorted(pts)]


def tolerance_table(rows: list[dict], networks: list[str], taus: list[float], steps: int,
                    fixed_rows: list[dict], seeds: dict[str, int]) -> list[dict]:
    """Per network and tau: tail means, power at lambda 0, fixed-lambda power at equal error.

    The fixed-lambda curve is that of the same task (network and seed), interpolated in
    log-log between its lambda values.
    """
    out = []
    for net in networks:
        curve = fixed_curve(fixed_rows, net, seeds.get(net), steps)
        p0 = next((p for lam, _, p in curve if lam == 0), math.nan)
        for tau in taus:
            sel = pick(rows, network=net, tolerance=tau, steps=steps, seed=seeds.get(net), noise=0.0)
            if not sel:
                continue
            r = sel[0]
            fixed = interp_power([(c, p) for lam, c, p in curve if lam > 0], r["tail_relative_error"])
            out.append({"network": net, "tau": tau, "tail_rel_error": r["tail_relative_error"],
                        "tail_power": r["tail_power"], "tail_lam": r["tail_lam"], "s0": r["s0"],
                        "power_lam0": p0, "reduction_vs_lam0": p0 / r["tail_power"],
                        "fixed_lambda_power_equal_error": fixed,
                        "controller_over_fixed": r["tail_power"] / fixed if fixed == fixed else math.nan,
                        "energy": r["energy"], "steady_state": r.get("steady_state"),
                        "bursts": r.get("bursts")})
    return out


def slope(lam_rows: list[dict], network: str) -> float | None:
    """Log-log slope of the median C/C0 over lambda 1e-10..1e-8, or None (missing/floor)."""
    pts = {t["lam"]: t["rel_error_median"] for t in lam_rows if t["network"] == network}
    lams = [x for x in (1e-10, 1e-9, 1e-8) if any(math.isclose(x, k) for k in pts)]
    if len(lams) < 2:
        return None
    ys = [next(v for k, v in pts.items() if math.isclose(k, x)) for x in lams]
    if min(ys) <= 0:
        return None
    return float(np.polyfit(np.log10(lams), np.log10(ys), 1)[0])


def has_floor(lam_rows: list[dict], network: str) -> bool:
    """True when the lambda-0 error is not far below the lambda-1e-10 error (law can't show)."""
    pts = {t["lam"]: t["rel_error_median"] for t in lam_rows if t["network"] == network}
    c0 = pts.get(0.0)
    c1 = next((v for k, v in pts.items() if math.isclose(k, 1e-10)), None)
    return c0 is None or c1 is None or c0 > 0.01 * c1
