"""The world's compiled kernels give what their plain-Python references give.

``learnboard.emulator.world.kernels`` keeps each numba kernel beside a reference in
plain Python; these tests run both on random inputs (the RP2040 ADC's transitions with
its wide codes, inputs in and far out of range, settling and settled blocks, noise on
and off, NaN and infinities) and require the same codes.
"""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.emulator.devices import AdcModel
from learnboard.emulator.world.kernels import block_codes, block_codes_reference


def _u16(bits: int) -> np.ndarray:
    sh = 16 - bits
    return np.array([((c << sh) | (c >> (bits - sh))) & 0xFFFF for c in range(1 << bits)],
                    dtype=np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_block_codes_matches_its_reference(seed):
    rng = np.random.default_rng(seed)
    bits = (12, 10, 8)[seed % 3]
    adc = AdcModel(bits, 3.3, gain_error=rng.uniform(-0.02, 0.02),
                   offset_lsb=rng.uniform(-3, 3), seed=seed)
    trans, u16 = adc.transitions, _u16(bits)
    top = float(1 << bits)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        z = rng.standard_normal(n + 40)
        z0 = int(rng.integers(0, 40))
        a0 = float(rng.uniform(-0.1 * top, 1.1 * top))
        b0 = float(rng.choice([0.0, rng.uniform(-top, top)]))
        kp = np.exp(-np.arange(n) * rng.uniform(0.01, 2.0)) if b0 else np.zeros(n)
        sig = float(rng.choice([0.0, 1.0, rng.uniform(0.1, 40.0)]))
        fast = np.empty(n, dtype=np.int64)
        ref = np.empty(n, dtype=np.int64)
        block_codes(trans, u16, a0, b0, kp, z, z0, sig, fast)
        block_codes_reference(trans, u16, a0, b0, kp, z, z0, sig, ref)
        assert fast.tolist() == ref.tolist(), (a0, b0, sig, n)


@pytest.mark.parametrize("a0", [float("nan"), float("inf"), -float("inf"), -1e300, 1e300,
                                0.5, 0.0, -0.0])
def test_block_codes_matches_its_reference_at_the_edges(a0):
    adc = AdcModel(12, 3.3, seed=1)
    u16 = _u16(12)
    z = np.array([0.0, 1.0, -1.0, float("nan")])
    kp = np.ones(4)
    for b0, sig in ((0.0, 0.0), (1.0, 1.0), (float("inf"), 0.0)):
        fast = np.empty(3, dtype=np.int64)
        ref = np.empty(3, dtype=np.int64)
        block_codes(adc.transitions, u16, a0, b0, kp, z, 1, sig, fast)
        block_codes_reference(adc.transitions, u16, a0, b0, kp, z, 1, sig, ref)
        assert fast.tolist() == ref.tolist()


def test_block_codes_reference_is_one_conversion_at_a_time():
    """The reference is the ADC model's own scalar conversion (AdcModel.code with its
    noise): the kernel and the emulator's single reads agree through it."""
    adc = AdcModel(12, 3.3, seed=4)
    u16 = _u16(12)
    z = adc.ahead(32).copy()
    volts = 1.234
    x = volts / adc._lsb * adc._g1 + adc.offset_lsb
    ref = np.empty(32, dtype=np.int64)
    block_codes_reference(adc.transitions, u16, x, 0.0, np.zeros(32), z, 0, adc.noise_lsb, ref)
    assert ref.tolist() == [u16[adc.code(volts)] for _ in range(32)]
