"""Vectorised device models: the NMOS edge, a diode and the digipot taper.

Every model takes numpy arrays (or scalars that broadcast) and returns the current
together with its partial derivatives, which the Newton solver needs.

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

import numpy as np

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
        ``(i, di_dva, di_dvb)``, arrays broadcast from the inputs.
    """
    va, vb, vg, vt, beta, sub_slope = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (va, vb, vg, vt, beta, sub_slope))
    )
    a_is_source = va <= vb
    vlow = np.where(a_is_source, va, vb)
    vds = np.abs(va - vb)
    sign = np.where(a_is_source, -1.0, 1.0)

    x0 = subthreshold_knee(sub_slope)
    x = vg - vt - vlow
    sub = x < x0
    # exp argument is <= 0 wherever it is used; clip so unused lanes cannot overflow
    tail = x0 * np.exp(np.minimum((x - x0) / x0, 0.0))
    xe = np.where(sub, tail, x)
    dxe_dx = np.where(sub, tail / x0, 1.0)

    ohmic = vds < xe
    i_mag = np.where(ohmic, beta * (xe - 0.5 * vds) * vds, 0.5 * beta * xe * xe)
    di_dxe = beta * np.where(ohmic, vds, xe)
    di_dvds = np.where(ohmic, beta * (xe - vds), 0.0)

    # d/dvlow acts through x (dx/dvlow = -1); d/dvhigh only through vds.
    d_dlow = -di_dxe * dxe_dx - di_dvds
    d_dhigh = di_dvds
    # I = sign * i_mag; when a is the source, va = vlow, vb = vhigh and sign = -1.
    di_dva = np.where(a_is_source, -d_dlow, d_dhigh)
    di_dvb = np.where(a_is_source, -d_dhigh, d_dlow)
    return sign * i_mag, di_dva, di_dvb


def diode_current(
    v: np.ndarray,
    i_s: np.ndarray | float,
    n: np.ndarray | float,
    vt_thermal: float = VT_THERMAL,
) -> tuple[np.ndarray, np.ndarray]:
    """Shockley diode current ``i_s (exp(v / (n vt)) - 1)`` and its slope ``di/dv``.

    Above ``DIODE_EXP_LIMIT`` thermal voltages the exponential continues as its tangent
    (same value and slope), so Newton iterates far in forward bias stay finite.
    """
    v, i_s, n = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (v, i_s, n)))
    nvt = n * vt_thermal
    u = v / nvt
    ue = np.minimum(u, DIODE_EXP_LIMIT)
    e = np.exp(ue)
    i = i_s * (e * (1.0 + (u - ue)) - 1.0)
    di = i_s * e / nvt
    return i, di


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
