"""Compiled conversions of a block of ADC reads for :meth:`World.adc_block` (numba).

Conversion ``i`` of a block sits at ``a0 + b0 kp[i]`` input LSB (a settled input:
``b0 = 0``; a mux still settling towards its target: ``kp[i]`` = exp(-period i / tau))
plus its noise ``z[z0 + i] sig``, and converts through the ADC's code transitions ``trans``
(in input LSB); ``u16`` maps the raw code to what ``ADC.read_u16`` returns. The
operations are those of the Python expression ``a0 + b0 * k + z * sig`` in its order, so
the codes are the ones a conversion at a time gives.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _bisect_right(a, x):
    """``bisect.bisect_right(a, x)`` for the code transitions ``a``: they sit about one
    LSB apart from 0.5 (wider only at the few DNL spikes), so the index is found by
    stepping from ``x + 0.5``."""
    if x != x:  # NaN compares false everywhere: bisect_right runs off the end
        return a.size
    i = int(min(max(x + 0.5, 0.0), a.size))
    while i > 0 and a[i - 1] > x:
        i -= 1
    while i < a.size and a[i] <= x:
        i += 1
    return i


@njit(cache=True)
def block_codes(trans, u16, a0, b0, kp, z, z0, sig, out):
    """``out[i] = u16[code of a0 + b0 kp[i] + z[z0 + i] sig]`` for every ``i`` of
    ``out`` (``z``: the ADC's block of normal deviates, ``z0``: the next unused one)."""
    for i in range(out.size):
        out[i] = u16[_bisect_right(trans, a0 + b0 * kp[i] + z[z0 + i] * sig)]


def warm_up() -> None:
    """Compile (or load from the cache) for the argument types World.adc_block passes."""
    one = np.ones(2)
    block_codes(np.arange(3.0), np.arange(4, dtype=np.int64), 1.0, 0.5, one, one, 0, 1.0,
                np.zeros(2, dtype=np.int64))
