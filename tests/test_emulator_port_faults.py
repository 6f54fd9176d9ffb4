"""Serial fault injection and REPL tracking of the virtual port (no VM needed)."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.emulator.repl_state import FRIENDLY, RAW, RAW_PASTE, RUNNING, ReplTracker
from learnboard.emulator.serial_faults import SerialFaults

from learnboard.errors import InputError

N = 200_000


def _payload(n: int = N) -> bytes:
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("kind", ["drop_rate", "corrupt_rate", "dup_rate"])
def test_each_fault_hits_about_its_rate_and_is_counted(kind):
    rate = 0.03
    faults = SerialFaults(**{kind: rate}, seed=11)
    data = _payload()
    out = faults.apply(data)
    c = faults.snapshot()
    hits = {"drop_rate": c.dropped, "corrupt_rate": c.corrupted, "dup_rate": c.duplicated}[kind]
    sigma = (N * rate * (1 - rate)) ** 0.5
    assert abs(hits - N * rate) < 5 * sigma
    assert c.bytes_in == N
    assert c.bytes_out == len(out) == N - c.dropped + c.duplicated
    if kind == "corrupt_rate":
        # A corrupted byte really changes; nothing else does.
        assert sum(a != b for a, b in zip(data, out, strict=True)) == c.corrupted
    if kind == "dup_rate":
        assert c.dropped == c.corrupted == 0 and len(out) == N + c.duplicated


def test_faults_are_reproducible_and_independent_of_chunking():
    data = _payload(50_000)
    rates = {"drop_rate": 0.01, "corrupt_rate": 0.02, "dup_rate": 0.01}
    whole = SerialFaults(**rates, seed=5).apply(data)
    chunked = SerialFaults(**rates, seed=5)
    cuts = [0, 1, 17, 4096, 4097, 30_000, len(data)]
    pieces = b"".join(chunked.apply(data[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    assert pieces == whole
    assert SerialFaults(**rates, seed=6).apply(data) != whole


def test_a_perfect_line_passes_bytes_unchanged():
    data = _payload(10_000)
    faults = SerialFaults(seed=1)
    assert faults.apply(data) == data
    assert faults.snapshot().bytes_out == 10_000


@pytest.mark.parametrize("rates", [{"drop_rate": 1.5}, {"dup_rate": -0.1}, {"drop_rate": 0.6, "corrupt_rate": 0.6}])
def test_bad_rates_are_refused_with_the_option_named(rates):
    with pytest.raises(InputError, match="rate"):
        SerialFaults(**rates)


def test_repl_tracker_follows_mpremote_through_raw_paste_and_back():
    t = ReplTracker()
    t.reboot(FRIENDLY)
    t.feed_output(b'MicroPython x\r\nType "help()" for more information.\r\n>>> ')
    assert (t.mode, t.state) == (FRIENDLY, FRIENDLY)
    t.feed_input(b"\r\x01")
    t.feed_output(b">>> \r\nraw REPL; CTRL-B to exit\r\n>")
    assert (t.mode, t.state) == (RAW, RAW)
    t.feed_input(b"\x05A\x01")
    t.feed_output(b"R\x01\x80\x00\x01")
    assert t.state == RAW_PASTE
    t.feed_input(b"print(1)\x04")
    t.feed_output(b"\x04")
    assert t.state == RUNNING
    t.feed_output(b"1\n\x04\x04>")
    assert (t.mode, t.state) == (RAW, RAW)
    t.feed_input(b"x=1\x04")
    t.feed_output(b"OK\x04\x04>")  # plain raw REPL, all in one chunk
    assert t.state == RAW
    t.feed_input(b"\r\x02")
    t.feed_output(b'\r\nMicroPython x\r\nType "help()" for more information.\r\n>>> ')
    assert (t.mode, t.state) == (FRIENDLY, FRIENDLY)


def test_repl_tracker_finds_banners_split_across_reads():
    t = ReplTracker()
    t.reboot(FRIENDLY)
    banner = b"\r\nraw REPL; CTRL-B to exit\r\n>"
    for i in range(len(banner)):
        t.feed_output(banner[i : i + 1])
    assert t.mode == RAW
