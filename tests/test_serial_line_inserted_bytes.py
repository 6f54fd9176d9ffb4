"""Inserted bytes on the emulated serial line (``SerialFaults(insert_rate=...)``): a
seeded Poisson stream of random bytes on the line's clock, landing by arrival time."""

from __future__ import annotations

import pytest
from learnboard.emulator.serial_faults import SerialFaults

from learnboard.errors import InputError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run(seed: int, chunks: list[int]) -> tuple[bytes, SerialFaults]:
    clock = Clock()
    line = SerialFaults(insert_rate=500.0, seed=seed, clock=clock)
    out = b""
    for n in chunks:
        clock.t += 0.01
        out += line.apply(b"\x55" * n) if n else line.noise()
    return out, line


def test_rate_values_and_reproducibility():
    out, line = run(3, [0, 40] * 500)  # 10 s of clock
    c = line.snapshot()
    assert 4500 < c.inserted < 5500  # 500 per second
    assert c.bytes_out == c.bytes_in + c.inserted == len(out)
    noise = out.replace(b"\x55", b"")  # the payload byte aside, the values are uniform
    assert {0x00, 0x03, 0x04} <= set(out) and len(set(noise)) == 255
    assert 0.08 < c.inserted_control / c.inserted < 0.17  # 32 of 256 values
    assert run(3, [0, 40] * 500)[0] == out  # the seed gives the same line
    assert run(4, [0, 40] * 500)[0] != out


def test_bytes_land_by_arrival_time():
    """On a slow line (a UART) a chunk occupies the line long enough for noise to land
    inside it; on USB (1 µs a byte, the default) almost never."""
    for byte_time, inside in ((10 / 115200, True), (1e-6, False)):
        clock = Clock()
        line = SerialFaults(insert_rate=200.0, seed=1, clock=clock, byte_time_s=byte_time)
        hits = 0
        for _ in range(300):
            clock.t += 0.05
            hits += b"\x55" * 100 not in line.apply(b"\x55" * 100)  # split by noise
        assert (hits > 150) == inside, hits


def test_bad_rate_names_the_option():
    with pytest.raises(InputError, match="bytes per second"):
        SerialFaults(insert_rate=-1)
