"""The world's compiled kernels (numba), each beside its plain-Python reference.

Only the arithmetic that runs per conversion is compiled: a block of ADC conversions
(:func:`block_codes`), and a block while a linear network's drives settle
(:func:`settle_block`, whose reference is the world's plain-Python
``Conversions._block_linear_eager``). The transistor-network DC solve has its own compiled kernel with
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

import math
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
    sc = np.ones(34)
    settle_block(one, sc, 2, np.arange(3.0), np.arange(4, dtype=np.int64), one, 0,
                 np.zeros(2, dtype=np.int64))


@njit(cache=True)
def settle_block(row, sc, nk, trans, u16, z, z0, codes):
    """A block of conversions of one node of a linear network while its drives settle,
    compiled: what ``World._block_linear_eager`` (the plain-Python reference) computes
    sample by sample for one connected mux, the same operations in the same order.

    Per sample at ``now``: unless the kept solve holds (``SolveCache.holds``), the drive
    volts (``_Settling.value`` of each of the ``nk`` driving outputs: ``to``, ``frm``,
    ``since``, ``tau``) are worked out; within 1e-7 V of those of the last re-solve (``p``) the
    solve is confirmed, else re-solved (``p`` takes them, one more solve counted). The
    node's volts are the last solve's (``sc[9]`` while no re-solve was taken, if
    ``sc[8]``) or the network's linear map ``row`` of ``p``; the mux's settling law and
    the ADC's conversion (``AdcModel.code``: noise ``z[z0 + i]``) give ``codes[i]``.

    ``sc`` holds the scalar state, read and written back: 0 the last check is of this
    actuation generation, 1 its time, 2 the last solve's time, 3 ``dynamic_until``, 4
    no stuck-edge fault pending, 5 max leak, 6 leak scale, 7 tol, 8/9 the kept node
    volts, 10 the first sample's µs, 11 µs between samples, 12-15 the mux's gain, time
    constant, output and its time, 16-21 the ADC's LSB, gain, offset, noise LSB, noise
    scale and vref; out: 22 solves taken, 23 whether the solve was checked at all; then
    ``nk`` each of ``p`` (read and written back), ``to``, ``frm``, ``since``, ``tau``.
    (Integer µs travel as floats: exact below 2**53.)"""
    n = codes.size
    p = sc[24:24 + nk]
    to = sc[24 + nk:24 + 2 * nk]
    frm = sc[24 + 2 * nk:24 + 3 * nk]
    since = sc[24 + 3 * nk:24 + 4 * nk]
    tau = sc[24 + 4 * nk:24 + 5 * nk]
    vals = np.empty(nk)
    chk_ok = sc[0] != 0.0
    chk_t = sc[1]
    solved_at = sc[2]
    dyn = sc[3]
    stuck_ok = sc[4] != 0.0
    max_leak = sc[5]
    leak_scale = sc[6]
    tol = sc[7]
    fresh = sc[8] == 0.0  # node volts owed from the linear map
    v = sc[9]
    now = sc[10]
    period = sc[11]
    gain = sc[12]
    mtau = sc[13]
    mout = sc[14]
    msince = sc[15]
    lsb = sc[16]
    g1 = sc[17]
    off = sc[18]
    nl = sc[19]
    ns = sc[20]
    vref = sc[21]
    noisy = nl != 0.0 and ns != 0.0
    solves = 0
    touched = False
    for i in range(n):
        if not (chk_ok and now >= dyn and
                (now - chk_t) * 1e-6 * max_leak * leak_scale <= tol and stuck_ok):
            for k in range(nk):
                if tau[k] <= 0:
                    vals[k] = to[k]
                else:
                    vals[k] = to[k] + (frm[k] - to[k]) * math.exp(-(now - since[k]) / tau[k])
            same = True
            for k in range(nk):
                if not abs(p[k] - vals[k]) <= 1e-7:
                    same = False
            touched = True
            chk_ok = True
            if same:
                chk_t = solved_at  # SolveCache.confirm
            else:
                for k in range(nk):
                    p[k] = vals[k]
                fresh = True
                solves += 1  # SolveCache.count_solve
                solved_at = now
                chk_t = now
        if fresh:
            v = 0.0
            for k in range(nk):
                v += row[k] * p[k]
            fresh = False
        target = v * gain  # AnalogMux.output
        kx = math.exp(-(now - msince) / mtau) if mtau > 0 else 0.0
        mout = target + (mout - target) * kx
        msince = now
        acc = 0.0 + mout
        if 0.0 > acc:  # min(max(acc, 0.0), vref) as Python picks
            acc = 0.0
        if vref < acc:
            acc = vref
        x = acc / lsb * g1 + off  # AdcModel.code
        if noisy:
            x += z[z0 + i] * nl * ns
        codes[i] = u16[_bisect_right(trans, x)]
        now += period
    sc[0] = 1.0 if chk_ok else 0.0
    sc[1] = chk_t
    sc[2] = solved_at
    sc[14] = mout
    sc[15] = msince
    sc[22] = solves
    sc[23] = 1.0 if touched else 0.0
