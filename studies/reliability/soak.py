"""Soak: a long training run on the emulated board in fast mode, memory watched on both
sides. The firmware and the host share one process here, so their allocations are told
apart by the source file that made them (``tracemalloc``): ``firmware/`` (the board),
``host/`` (the link), the emulator's world, and the rest.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from learnboard.cli.connection import LinkedInProcessBoard

_ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"firmware": _ROOT / "firmware", "host": _ROOT / "host", "emulator": _ROOT / "emulator"}


@dataclass
class SoakReport:
    steps: int
    seconds: float
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)  # (step, bytes by group)
    telemetry: int = 0

    # The first chunk is warm-up: caches (solver warm starts, interned names, queues)
    # fill there, so growth is measured from the end of it.

    def growth(self, group: str) -> int:
        """Bytes held by ``group`` at the end minus after the first chunk."""
        return self.samples[-1][1][group] - self.samples[0][1][group]

    def slope_per_1000_steps(self, group: str) -> float:
        """Least-squares growth of ``group`` in bytes per 1000 steps after the first chunk."""
        later = self.samples[1:]
        s = np.array([x for x, _ in later], float)
        b = np.array([g[group] for _, g in later], float)
        return float(np.polyfit(s, b, 1)[0] * 1000) if len(s) > 1 else 0.0


def _by_group(snapshot: tracemalloc.Snapshot) -> dict[str, int]:
    out = dict.fromkeys([*GROUPS, "other"], 0)
    for stat in snapshot.statistics("filename"):
        name = stat.traceback[0].filename
        for group, root in GROUPS.items():
            if name.startswith(str(root)):
                out[group] += stat.size
                break
        else:
            out["other"] += stat.size
    return out


def run_soak(steps: int, *, chunk: int = 1000, board: str = "gen2-clln", seed: int = 0,
             every: int = 100, on_chunk=None) -> SoakReport:
    """Train ``steps`` steps in chunks; sample memory by group after each chunk
    (``on_chunk(step, bytes_by_group)`` is called with each sample, e.g. to print progress)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    report = SoakReport(steps, 0.0)
    try:
        with LinkedInProcessBoard(board, seed=seed) as emu:
            link = emu.link
            n_in = sum(1 for p in emu.board.inputs if p.fixed is None)
            vn = emu.board.limits.max_node_volts
            rng = np.random.default_rng(seed)
            x = rng.uniform(0, 0.8 * vn, (4, n_in))
            y = rng.uniform(0, 0.5 * vn, (4, len(emu.board.outputs)))
            link.call("upload_examples", start=0, x=x.tolist(), y=y.tolist(), clear=True)
            link.call("set_params", batch=1)  # one example per step, cycling
            done = 0
            while done < steps:
                n = min(chunk, steps - done)
                link.call("train", steps=n, every=every)
                while True:
                    ev = link.next_event(timeout=1.0)
                    while link.next_telemetry(timeout=0) is not None:
                        report.telemetry += 1
                    if ev is not None and ev[0] == "done":
                        break
                    if ev is None:
                        link.call("status")  # the host is alive: no silence parking
                done += n
                report.samples.append((done, _by_group(tracemalloc.take_snapshot())))
                if on_chunk is not None:
                    on_chunk(*report.samples[-1])
    finally:
        tracemalloc.stop()
    report.seconds = time.perf_counter() - t0
    return report
