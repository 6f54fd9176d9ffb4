"""Frame-layer speed and allocation: firmware in the real MicroPython VM (192 KB heap)
and under CPython, host codec decode/encode rates. Prints a table.

    python benchmarks/bench_frames.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learnboard.firmware import FIRMWARE_DIR  # noqa: E402
from learnboard.host import codec  # noqa: E402

N = 2000

VM_BENCH = r"""
import gc, time, micropython
from lbfw import server, frame, crc

class Null:
    def read(self):
        return None
    def write(self, data):
        pass

try:
    total = micropython.mem_total
except AttributeError:
    total = None

def measure(name, fn, n):
    fn()
    gc.collect()
    a0 = total() if total else 0
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    dt = time.ticks_diff(time.ticks_us(), t0)
    a1 = total() if total else 0
    print("%s|%.2f|%.1f" % (name, dt / n, (a1 - a0) / n if total else -1))

srv = server.Server(Null(), {"echo": lambda a: a})
v16 = [0.1 * i for i in range(16)]
k32 = list(range(32))
measure("telemetry frame (fixed fields)", lambda: srv.telemetry(1000, 0.25, 0.001, 0.5, 8, 1500, 2100, 0), N)
measure("telemetry frame + 16 V + 32 taps", lambda: srv.telemetry(1000, 0.25, 0.001, 0.5, 8, 1500, 2100, 0, v=v16, k=k32), N)
req = bytes(frame.Encoder().encode(frame.REQ, 1, [7, "echo", {"x": 1}]))
measure("request parse + dispatch + reply", lambda: srv.parser.feed(req), N)
blob = bytes(range(100))
measure("crc32 native, 100 B", lambda: crc.crc32(blob), N)
measure("crc32 fallback, 100 B", lambda: crc.crc32_py(blob), N // 4)
"""


def vm_rows() -> list[tuple[str, str, float, float]]:
    exe = Path(sys.executable).with_name("micropython")
    env = dict(os.environ, MICROPYPATH=str(FIRMWARE_DIR))
    out = subprocess.run([str(exe), "-X", "heapsize=192K", "-c", VM_BENCH.replace("N)", f"{N})").replace("N //", f"{N} //")],
                         capture_output=True, env=env, check=True).stdout.decode()
    rows = []
    for line in out.strip().splitlines():
        name, us, alloc = line.split("|")
        rows.append(("VM 192K", name, float(us), float(alloc)))
    return rows


def cpython_rows() -> list[tuple[str, str, float, float]]:
    from learnboard.firmware.lbfw import server

    class Null:
        def read(self):
            return None

        def write(self, data):
            pass

    srv = server.Server(Null(), {})
    t0 = time.perf_counter()
    for _ in range(N):
        srv.telemetry(1000, 0.25, 0.001, 0.5, 8, 1500, 2100, 0)
    fw = (time.perf_counter() - t0) / N * 1e6

    body = {"t": 1, "step": 1000, "err": 0.25, "pwr": 0.001, "lam": 0.5, "n": 8, "dt": 1500,
            "dtmax": 2100, "flt": 0, "bad": 0, "v": [0.1 * i for i in range(16)], "k": list(range(32))}
    t0 = time.perf_counter()
    frames = [codec.encode_frame(codec.MessageType.TLM, i, body) for i in range(N)]
    enc = (time.perf_counter() - t0) / N * 1e6
    stream = b"".join(frames)
    dec = codec.FrameDecoder()
    t0 = time.perf_counter()
    for i in range(0, len(stream), 4096):
        dec.feed(stream[i : i + 4096])
    elapsed = time.perf_counter() - t0
    assert dec.stats.ok == N
    return [
        ("CPython", "firmware telemetry frame (fixed fields)", fw, float("nan")),
        ("host", "encode telemetry frame + 16 V + 32 taps", enc, float("nan")),
        ("host", f"decode same ({N / elapsed:,.0f} frames/s)", elapsed / N * 1e6, float("nan")),
    ]


def main() -> None:
    rows = vm_rows() + cpython_rows()
    print(f"{'where':<9} {'what':<45} {'us/op':>9} {'bytes alloc/op':>15}")
    for where, what, us, alloc in rows:
        alloc_s = "-" if alloc != alloc else f"{alloc:.1f}"
        print(f"{where:<9} {what:<45} {us:>9.2f} {alloc_s:>15}")


if __name__ == "__main__":
    main()
