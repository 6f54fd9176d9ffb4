"""Compiled conversions of a whole mux scan for :meth:`World.adc_scan` (numba).

Each read of a scan is: the read mux connects and settles for ``settle`` µs from the
output it held (first-order, ``kone`` = exp(-settle/tau)), then ``n`` conversions 2 µs
apart while it keeps settling (``kp[i]`` = exp(-2 i/tau), ``kend`` = exp(-2 (n-1)/tau)),
each with its own noise and the converter's transfer (``trans``: the code transitions,
in input LSB). This is the
arithmetic of :meth:`World.adc_sum`'s one-source branches, operation for operation (so
the codes are the same), for every read of the scan in one call; the exponentials
come in from Python so that they are libm's, as the Python branches use.
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
def scan_sums(mux, ch, target, out, since, chan, has_en, t0, settle, kone, kend, tau_pos, n,
              kp, z, trans, lsb, g1, off, nl, ns, vref, sums):
    """Code sums of the reads in order into ``sums``. Read ``r``: at ``t0 + r (settle +
    2 n)`` the shared select lines go to channel ``ch[r]`` (``chan[0]``: the channel
    now; a change restarts every mux's settling, ``since``), mux ``mux[r]`` is enabled
    (if it has an enable pin), and ``settle`` µs later converts ``n`` times with its
    output heading for ``target[r]`` volts from ``out[m]``, noise ``z[r n:(r + 1) n]``.
    ``out``, ``since`` and ``chan`` are updated as the reads go. Returns how many reads
    were done: it stops before a read that needs the general path (settling for other
    than ``settle`` µs, or an output that would clip while settling)."""
    g = g1 / lsb
    sig = nl * ns
    per = settle + 2 * n
    for r in range(target.size):
        m = mux[r]
        t = t0 + r * per
        changed = ch[r] != chan[0]
        start = t if changed or has_en[m] else since[m]
        if t + settle - start != settle:
            return r
        tgt = target[r]
        v = tgt + (out[m] - tgt) * kone
        s = 0
        if n == 1 or abs(v - tgt) < 1e-9:  # settled: AdcModel.code_sum
            x = min(max(v, 0.0), vref) / lsb * g1 + off
            for i in range(n):
                s += _bisect_right(trans, x + z[r * n + i] * nl * ns)
        elif tau_pos and 0.0 <= v <= vref and 0.0 <= tgt <= vref:  # settling
            a0 = tgt / lsb * g1 + off
            b0 = (v - tgt) * g
            for i in range(n):
                s += _bisect_right(trans, a0 + b0 * kp[i] + z[r * n + i] * sig)
        else:
            return r
        if changed:
            chan[0] = ch[r]
            since[:] = t
        out[m] = tgt + (v - tgt) * kend if n > 1 else v
        since[m] = t + settle + 2 * (n - 1)
        sums[r] = s
    return target.size


def warm_up() -> None:
    """Compile (or load from the cache) for the argument types World.adc_scan passes."""
    i1 = np.zeros(1, dtype=np.int64)
    one = np.ones(1)
    scan_sums(i1, i1, one, one.copy(), i1.copy(), i1.copy(), np.ones(1, dtype=bool), 0, 20,
              0.5, 0.5, True, 2, np.ones(2), np.zeros(2), np.arange(3.0), 1.0, 1.0, 0.0,
              1.0, 1.0, 3.3, i1.copy())
