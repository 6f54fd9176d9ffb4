"""What the per-record checksum of the telemetry log costs: writing and reading N records
with it and without it (as an earlier learnboard wrote them), in one run, as ratios.

    python benchmarks/bench_runlog_checksum.py            # 100,000 records, best of 3
    python benchmarks/bench_runlog_checksum.py -n 20000

Writing goes through ``RunLog.append`` and ``close`` (buffered, one fsync at the end);
"without" swaps in the plain msgpack packing. Reading is ``inspect_log`` on each file: the
checksummed one is verified record by record, the other read unchecked. The records are
shaped like a session's ``tlm`` records (about 150 bytes); ``--edges`` adds a ``k`` list.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learnboard.host import runlog  # noqa: E402


def _record(step: int, edges: int) -> dict:
    rec = {"kind": "tlm", "step": step, "seq": step, "err": 1.234e-3 / (1 + step), "n": 4, "dt": 41210,
           "dtmax": 44100, "flt": 0, "bad": 0, "pwr": 3.1e-4, "lam": 0.0, "board_t": 41 * step,
           "rel_err": 0.5 / (1 + step)}
    if edges:
        rec["k"] = [2.5 + 1e-3 * e for e in range(edges)]
    return rec


def _write(path: Path, n: int, edges: int, checked: bool) -> float:
    def plain(rec: dict, packer: msgpack.Packer | None = None) -> bytes:  # the same packing, no crc
        return (packer or runlog._packer()).pack(rec)

    saved = runlog.pack
    if not checked:
        runlog.pack = plain
    try:
        recs = [_record(s, edges) for s in range(n)]
        t0 = time.perf_counter()
        with runlog.RunLog(path, flush_interval=1.0) as log:
            for rec in recs:
                log.append(rec)
        return time.perf_counter() - t0
    finally:
        runlog.pack = saved


def _read(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    scan = runlog.inspect_log(path)
    dt = time.perf_counter() - t0
    assert len(scan.records) == n and not scan.damaged and scan.tail is None
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="records (default 100000)")
    ap.add_argument("--edges", type=int, default=0, help="per-edge states in each record (default none)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many (default 3)")
    args = ap.parse_args()
    best = {k: float("inf") for k in ("w_on", "w_off", "r_on", "r_off")}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            on, off = Path(tmp, f"on{r}.msgpack"), Path(tmp, f"off{r}.msgpack")
            best["w_off"] = min(best["w_off"], _write(off, args.n, args.edges, False))
            best["w_on"] = min(best["w_on"], _write(on, args.n, args.edges, True))
            best["r_off"] = min(best["r_off"], _read(off, args.n))
            best["r_on"] = min(best["r_on"], _read(on, args.n))
            size_on, size_off = on.stat().st_size, off.stat().st_size
    us = 1e6 / args.n
    print(f"{args.n} records, {size_off / args.n:.0f} B each without the checksum, +{(size_on - size_off) / args.n:.0f} B "
          f"with it ({size_on / size_off:.3f}x the file); best of {args.repeat}")
    print(f"write: {best['w_off'] * us:.2f} µs/record without, {best['w_on'] * us:.2f} with: "
          f"ratio {best['w_on'] / best['w_off']:.2f}")
    print(f"read:  {best['r_off'] * us:.2f} µs/record without, {best['r_on'] * us:.2f} with (verified): "
          f"ratio {best['r_on'] / best['r_off']:.2f}")


if __name__ == "__main__":
    main()
