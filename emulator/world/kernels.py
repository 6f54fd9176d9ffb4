"""The world's compiled kernels (numba), each beside its plain-Python reference.

Only the arithmetic that runs per conversion is compiled: a block of ADC conversions
(:func:`block_codes`). The transistor-network DC solve has its own compiled kernel with
the solver (``learnboard.physics.dc_newton``). Every kernel here has a reference version
in plain Python that states what it computes; the tests run both on random inputs and require the same
results, so the compiled form may be fast but never different.

A block's conversion ``i`` sits at ``a0 + b0 kp[i]`` input LSB (a settled input:
``b0 = 0``; a mux still settling towards its target: ``kp[i]`` = exp(-period i / tau))
plus its noise ``z[z0 + i] sig``, and converts through the ADC's code transitions
``trans`` (in input LSB); ``u16`` maps the raw code to what ``ADC.read_u16`` returns.
The operations are those of the Python expression ``a0 + b0 * k + z * sig`` in its
order, so the codes are the ones a conversion at a time gives.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
from numba import njit


def block_codes_reference(trans, u16, a0: float, b0: float, kp, z, z0: int, sig: float,
                          out) -> None:
    """What :func:`block_codes` computes, in plain Python: ``out[i] = u16[code]`` with
    ``code = bisect_right(trans, a0 + b0 kp[i] + z[z0 + i] sig)`` for every ``i``."""
    t = list(trans)
    for i in range(len(out)):
        out[i] = u16[bisect_right(t, a0 + b0 * float(kp[i]) + float(z[z0 + i]) * sig)]


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
    """Compiled :func:`block_codes_reference` (``trans``, ``kp``, ``z``: float arrays;
    ``u16``, ``out``: int64 arrays)."""
    for i in range(out.size):
        out[i] = u16[_bisect_right(trans, a0 + b0 * kp[i] + z[z0 + i] * sig)]


def warm_up() -> None:
    """Compile (or load from the cache) for the argument types the world passes."""
    one = np.ones(2)
    block_codes(np.arange(3.0), np.arange(4, dtype=np.int64), 1.0, 0.5, one, one, 0, 1.0,
                np.zeros(2, dtype=np.int64))
