"""Reliability campaign, bad input: the firmware's frame parser, inside the real
MicroPython VM, takes more than 10,000 generated frames — valid, bit-flipped, truncated,
oversized, other versions, garbage between them — without a crash, agrees with the
host's decoder on every one, and its heap does not grow."""

from __future__ import annotations

import random

import msgpack
import pytest
from learnboard.host import codec

from ._protocol_vm import ParserOracle
from .test_firmware_frame import _frame, _host_reference

N_FRAMES = 10_240
PER_BATCH = 64  # the oracle reads a batch into the 192 KB heap at once


def _damaged(rng: random.Random) -> bytes:
    f = bytearray(_frame(rng))
    kind = rng.randrange(6)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(f) - 1)
            f[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncated
        f = f[: rng.randrange(1, len(f))]
    elif kind == 2:  # a dropped byte
        del f[rng.randrange(len(f) - 1)]
    elif kind == 3:  # a duplicated byte
        i = rng.randrange(len(f) - 1)
        f[i:i] = f[i:i + 1]
    elif kind == 4:  # an overlong run with no delimiter
        f = bytearray(rng.randrange(1, 256) for _ in range(rng.randrange(600, 3000)))
    return bytes(f)


def _batch(rng: random.Random) -> bytes:
    parts = []
    for _ in range(PER_BATCH):
        parts.append(_frame(rng) if rng.random() < 0.5 else _damaged(rng))
        parts.append(b"\x00")  # a damaged frame ends at the next delimiter, as on the wire
    return b"".join(parts)


@pytest.mark.vm
def test_ten_thousand_fuzzed_frames_in_the_vm():
    rng = random.Random(2026)
    oracle = ParserOracle()
    try:
        oracle.feed(_batch(rng))  # warm up: buffers and interned names exist from here
        oracle.report()
        base = oracle.mem_alloc()
        total = decoded = dropped = 0
        for _ in range(N_FRAMES // PER_BATCH):
            stream = _batch(rng)
            _, before = oracle.report()
            oracle.feed(stream, bytewise=rng.random() < 0.2)
            got, after = oracle.report()
            expected, stats = _host_reference(stream)
            assert [(t, s) for t, s, _ in got] == [(f.mtype, f.seq) for f in expected]
            for (_, _, packed), f in zip(got, expected, strict=True):
                assert msgpack.unpackb(packed, raw=False, strict_map_key=False) == f.body
            delta = {k: after[k] - before[k] for k in after}
            assert delta["internal"] == 0
            assert delta["ok"] == stats.ok
            total += PER_BATCH
            decoded += len(got)
            dropped += sum(delta[k] for k in ("bad_crc", "bad_cobs", "short", "oversize",
                                              "bad_version", "bad_type", "bad_body"))
        grown = oracle.mem_alloc() - base
    finally:
        oracle.close()
    assert total >= 10_000
    assert decoded > total // 4 and dropped > total // 4  # both paths were exercised
    assert grown <= 64, f"parser heap grew by {grown} bytes over {total} frames"
    print(f"\nparser fuzz: {total} frames, {decoded} decoded, {dropped} dropped, heap growth {grown} B")


def test_host_decoder_takes_the_same_campaign_without_raising():
    rng = random.Random(7)
    dec = codec.FrameDecoder(accept=frozenset(range(1, 6)))
    frames = dec.feed(_batch(rng) * 4)
    assert frames and dec.stats.ok == len(frames)
