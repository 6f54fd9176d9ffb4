"""Device models: the NMOS edge, a diode and the digipot taper.

Each device law is written once, for one element (:func:`nmos_law`, :func:`diode_law`),
as a plain function that numba compiles; the array versions (:func:`nmos_current`,
:func:`diode_current`, taking numpy arrays or scalars that broadcast) map it over their
inputs, and the compiled Newton kernel (:mod:`learnboard.physics.dc_newton`) calls it per
edge. Each returns the current together with its partial derivatives, which Newton needs.

NMOS edge (Generation 2, Dillavou et al., PNAS 121, e2319718121 (2024)). The gate is referenced to ground; the two channel
terminals ``a`` and ``b`` are interchangeable, the lower one acting as the source. With
the source overdrive ``x = VG - Vt - min(Va, Vb)`` and ``vds = |Va - Vb|`` the
Shichman–Hodges (SPICE level-1, ``LAMBDA = GAMMA = 0``) current is

* ohmic (``vds < x``): ``I = beta (x - vds/2) vds``
  (equivalently ``beta (VG - Vt - (Va+Vb)/2)(Va - Vb)``),
* saturation (``vds >= x``): ``I = ½ beta x²``,

signed so that it flows from the higher terminal to the lower one. Level-1 has a hard
cut-off at ``x = 0``; real transistors leak with a slope of ≈ 100 mV/decade. We keep
level-1 unchanged for ``x >= x0`` and, below ``x0``, replace the overdrive by
``x0 · exp((x - x0)/x0)``, which matches value and first derivative at ``x0``. In
saturation the current is then ``∝ exp(2x/x0)``, i.e. ``x0·ln(10)/2`` volts per decade,
so ``x0 = 2·sub_slope/ln(10)`` gives exactly ``sub_slope`` V/decade. The model therefore
*equals* ngspice level-1 wherever the source overdrive is at least ``x0`` (87 mV for
the default 0.1 V/decade) and differs by design below it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from learnboard.errors import InputError

LN10 = float(np.log(10.0))

# Thermal voltage kT/q at 300 K; spice.py sets ngspice's temperature to match it.
VT_THERMAL = 0.025852

# Beyond this many thermal voltages the diode exponential is continued linearly, so a
# wild Newton iterate cannot overflow (exp(40) ≈ 2e17, far above any real current).
DIODE_EXP_LIMIT = 40.0


def subthreshold_knee(sub_slope: float | np.ndarray) -> np.ndarray:
    """Overdrive ``x0 = 2·sub_slope/ln 10`` (V) below which the exponential tail takes over."""
    return 2.0 * np.asarray(sub_slope, dtype=float) / LN10


# inline="always": numba otherwise calls the law per edge from the Newton kernel in
# another module (≈ 0.4 µs of a ≈ 5 µs gen2 re-solve, measured)
@njit(cache=True, inline="always")
def nmos_law(va: float, vb: float, gvt: float, beta: float, x0: float) -> tuple:
    """The NMOS edge for one element: ``(i, di/dva, di/dvb)`` with overdrive ``gvt`` =
    vg - vt and knee ``x0`` (:func:`subthreshold_knee`).

    The one place the model is written: :func:`nmos_current` maps it over arrays and the
    compiled Newton kernel (:mod:`learnboard.physics.dc_newton`) calls it per edge.
    """
    src = va <= vb  # the lower terminal acts as the source
    vlow = va if src else vb
    vds = abs(va - vb)
    x = gvt - vlow
    # the exp argument is <= 0 wherever it is used; clipped so that unused values
    # cannot overflow
    tail = x0 * math.exp(min((x - x0) / x0, 0.0))
    if x < x0:
        xe = tail
        dxe_dx = tail / x0
    else:
        xe = x
        dxe_dx = 1.0
    if vds < xe:  # ohmic
        i_mag = beta * (xe - 0.5 * vds) * vds
        di_dxe = beta * vds
        di_dvds = beta * (xe - vds)
    else:  # saturation
        i_mag = 0.5 * beta * xe * xe
        di_dxe = beta * xe
        di_dvds = 0.0
    # d/dvlow acts through x (dx/dvlow = -1) and vds; d/dvhigh only through vds
    d_dlow = -di_dxe * dxe_dx - di_dvds
    if src:  # current flows from b (high) to a (low): negative
        return -i_mag, -d_dlow, -di_dvds
    return i_mag, di_dvds, d_dlow


@njit(cache=True, inline="always")
def diode_law(v: float, i_s: float, nvt: float) -> tuple:
    """The diode for one element: ``(i, di/dv)`` at forward bias ``v`` with ``nvt`` = n·kT/q.

    Above ``DIODE_EXP_LIMIT`` thermal voltages the exponential continues as its tangent
    (same value and slope), so Newton iterates far in forward bias stay finite.
    """
    u = v / nvt
    ue = min(u, DIODE_EXP_LIMIT)
    e = math.exp(ue)
    return i_s * (e * (1.0 + (u - ue)) - 1.0), i_s * e / nvt


@njit(cache=True)
def _nmos_loop(va, vb, gvt, beta, x0, out):
    for k in range(va.size):
        out[0, k], out[1, k], out[2, k] = nmos_law(va[k], vb[k], gvt[k], beta[k], x0[k])


@njit(cache=True)
def _diode_loop(v, i_s, nvt, out):
    for k in range(v.size):
        out[0, k], out[1, k] = diode_law(v[k], i_s[k], nvt[k])


def nmos_many(va, vb, gvt, beta, x0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nmos_law` over equal-length 1-D float arrays: ``(i, di/dva, di/dvb)``."""
    out = np.empty((3, len(va)))
    _nmos_loop(*(np.ascontiguousarray(x, dtype=float) for x in (va, vb, gvt, beta, x0)), out)
    return out[0], out[1], out[2]


def diode_many(v, i_s, nvt) -> tuple[np.ndarray, np.ndarray]:
    """:func:`diode_law` over equal-length 1-D float arrays: ``(i, di/dv)``."""
    out = np.empty((2, len(v)))
    _diode_loop(*(np.ascontiguousarray(x, dtype=float) for x in (v, i_s, nvt)), out)
    return out[0], out[1]


def _flat(arrays) -> tuple[tuple, list[np.ndarray]]:
    """Broadcast shape and contiguous flat float copies of ``arrays``."""
    b = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
    return b[0].shape, [np.ascontiguousarray(x).reshape(-1) for x in b]


def nmos_current(
    va: np.ndarray,
    vb: np.ndarray,
    vg: np.ndarray,
    vt: np.ndarray | float,
    beta: np.ndarray | float,
    sub_slope: np.ndarray | float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel current of a gate-referenced NMOS edge, positive from ``a`` to ``b``.

    Args:
        va, vb: terminal voltages (V, relative to ground).
        vg: gate voltage (V, relative to ground).
        vt: threshold voltage (V).
        beta: transconductance factor ``KP·W/L`` (A/V²).
        sub_slope: subthreshold slope (V/decade) of the tail below the level-1 cut-off.

    Returns:
        ``(i, di_dva, di_dvb)``, arrays broadcast from the inputs (:func:`nmos_law` per
        element).
    """
    shape, (va, vb, vg, vt, beta, sub_slope) = _flat((va, vb, vg, vt, beta, sub_slope))
    i, da, db = nmos_many(va, vb, vg - vt, beta, subthreshold_knee(sub_slope))
    return i.reshape(shape), da.reshape(shape), db.reshape(shape)


def diode_current(
    v: np.ndarray,
    i_s: np.ndarray | float,
    n: np.ndarray | float,
    vt_thermal: float = VT_THERMAL,
) -> tuple[np.ndarray, np.ndarray]:
    """Shockley diode current ``i_s (exp(v / (n vt)) - 1)`` and its slope ``di/dv``
    (:func:`diode_law` per element)."""
    shape, (v, i_s, n) = _flat((v, i_s, n))
    i, di = diode_many(v, i_s, n * vt_thermal)
    return i.reshape(shape), di.reshape(shape)


def _check_taper(n_taps: int, r_min: float, r_max: float, taper: str) -> None:
    if n_taps < 2:
        raise InputError(f"a digipot needs at least 2 taps, got {n_taps}", field="n_taps")
    if not 0 < r_min < r_max:
        raise InputError(
            f"need 0 < r_min < r_max, got r_min={r_min} Ω, r_max={r_max} Ω", field="r_min"
        )
    if taper not in ("log", "linear"):
        raise InputError(f"taper must be 'log' or 'linear', got {taper!r}", field="taper")


def digipot_resistance(
    tap: np.ndarray | int,
    n_taps: int = 100,
    r_min: float = 40.0,
    r_max: float = 32e3,
    taper: str = "log",
    r_wiper: float = 0.0,
) -> np.ndarray:
    """Resistance (Ω) of a digipot edge at ``tap`` (0 … n_taps-1, clipped; no wrap).

    The defaults model the X9C303 as the Gen-1 lab code does: 100 taps with a
    logarithmic taper from 40 Ω to 32 kΩ (each tap ×1.070). ``r_wiper`` (X9C303: 40 Ω
    typical, 100 Ω max) is added in series.
    """
    _check_taper(n_taps, r_min, r_max, taper)
    t = np.clip(np.asarray(tap, dtype=float), 0, n_taps - 1) / (n_taps - 1)
    if taper == "log":
        r = r_min * (r_max / r_min) ** t
    else:
        r = r_min + (r_max - r_min) * t
    return r + r_wiper


def digipot_tap_for_resistance(
    resistance: np.ndarray | float,
    n_taps: int = 100,
    r_min: float = 40.0,
    r_max: float = 32e3,
    taper: str = "log",
    r_wiper: float = 0.0,
) -> np.ndarray:
    """Nearest tap (int array) to ``resistance`` — nearest in log space for a log taper.

    Inverse of :func:`digipot_resistance`; values outside the range map to the end taps.
    """
    _check_taper(n_taps, r_min, r_max, taper)
    r = np.asarray(resistance, dtype=float) - r_wiper
    if taper == "log":
        t = np.log(np.maximum(r, 1e-300) / r_min) / np.log(r_max / r_min)
    else:
        t = (r - r_min) / (r_max - r_min)
    return np.clip(np.rint(t * (n_taps - 1)), 0, n_taps - 1).astype(np.int64)
