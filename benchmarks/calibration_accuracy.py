"""Accuracy of `learnboard calibrate` on emulated boards against the injected spreads.

    python benchmarks/calibration_accuracy.py --seeds 3

Prints, per board and seed: ADC gain/offset, per-edge errors (rms, max |z|, correlation
with the truth, the truth's spread) and how well a twin predicts node voltages compared
with the nominal description.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
from learnboard.cli.connection import open_board
from learnboard.emulator.twin import TwinWorld
from learnboard.host.calibration import calibrate

from learnboard.boards.board_circuit import edge_parameters
from learnboard.physics import Fix, solve


def _rel(a, m):
    return a[m] / np.exp(np.mean(np.log(a[m])))


def _twin_check(conn, cal, rng, n=8):
    b = conn.board
    nom = copy.deepcopy(cal)
    e = nom["edges"]
    part = b.parts[b.edges[0].part]
    if e["kind"] == "digipot":
        e["r_scale"], e["r_wiper"] = [1.0] * e["n"], [part.r_wiper] * e["n"]
    else:
        e["vt"], e["beta"] = [part.vt] * e["n"], [part.beta] * e["n"]
    worlds = {"twin": TwinWorld(b, cal), "nominal": TwinWorld(b, nom)}
    errs = {k: [] for k in worlds}
    for _ in range(n):
        k = (rng.integers(40, 100, e["n"]).tolist() if e["kind"] == "digipot"
             else rng.uniform(1.0, 5.1, e["n"]).tolist())
        conn.link.call("write_edges", start=0, k=k)
        conn.link.call("infer", x=rng.uniform(0.1, 0.4, 2).tolist())
        truth = conn.true_state(0)
        fw = np.asarray(conn.link.call("read_edges")["k"], dtype=float)
        state = fw if e["kind"] == "digipot" else truth.edge_state
        fixes = [Fix(a, v) for a, v in sorted(conn.world.driven(0).items())]
        for name, w in worlds.items():
            sol = solve(w.circuit(0, state), fixes)
            errs[name].append(np.max(np.abs(sol.node_voltages - truth.node_voltages)))
    return {k: float(np.median(v)) for k, v in errs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    for name in ("gen1-digipot", "gen2-clln"):
        for seed in range(1, args.seeds + 1):
            t0 = time.perf_counter()
            with open_board("emu:" + name, seed=seed) as conn:
                cal = calibrate(conn.link, conn.board, seed=seed)
                dt = time.perf_counter() - t0
                twin = _twin_check(conn, cal, np.random.default_rng(seed + 100))
            truth = edge_parameters(conn.board, 0, seed)
            e = cal["edges"]
            m = [i for i in range(e["n"]) if i not in e["unmeasurable"]]
            ch = cal["adc"]["channels"]["0"]
            print(f"{name} seed {seed}: {dt:.1f} s; ADC gain {ch['gain']:.5f}±{ch['gain_sd']:.5f} "
                  f"(ideal {4096 / 4095:.5f}), offset {ch['offset_v'] * 1e3:+.3f}±"
                  f"{ch['offset_sd'] * 1e3:.3f} mV")
            if e["kind"] == "digipot":
                est, tr = _rel(np.array(e["r_scale"]), m), _rel(truth["r_scale"], m)
                sd = np.array(e["r_scale_sd"])[m]
                print(f"  r_scale (relative): rms err {np.sqrt(np.mean((est - tr) ** 2)):.4f}, "
                      f"max |z| {np.max(np.abs(est - tr) / sd):.2f}, corr "
                      f"{np.corrcoef(est, tr)[0, 1]:.3f}, spread {np.std(tr):.4f}; "
                      f"tap offset {e['tap_offset']['taps']:+.2f}±{e['tap_offset']['sd']:.2f}")
            else:
                vt, sd = np.array(e["vt"])[m], np.array(e["vt_sd"])[m]
                err = vt - truth["vt"][m]
                print(f"  vt: rms err {np.sqrt(np.mean(err ** 2)) * 1e3:.2f} mV, mean "
                      f"{np.mean(err) * 1e3:+.2f} mV, max |z| {np.max(np.abs(err) / sd):.2f}, "
                      f"corr {np.corrcoef(vt, truth['vt'][m])[0, 1]:.3f}, spread "
                      f"{np.std(truth['vt'][m]) * 1e3:.1f} mV")
                beta = np.array(e["beta"])
                est, tr = _rel(beta, m), _rel(truth["beta"], m)
                bsd = (np.array(e["beta_sd"]) / beta)[m]
                print(f"  beta (relative): rms err {np.sqrt(np.mean((est / tr - 1) ** 2)):.4f}, "
                      f"max |z| {np.max(np.abs(est / tr - 1) / bsd):.2f}, corr "
                      f"{np.corrcoef(est, tr)[0, 1]:.3f}, spread {np.std(np.log(tr)):.4f}")
            print(f"  node-voltage prediction, median worst node: twin {twin['twin'] * 1e3:.3f} mV, "
                  f"nominal {twin['nominal'] * 1e3:.3f} mV")


if __name__ == "__main__":
    main()
