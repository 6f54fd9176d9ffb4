"""Device models: level-1 equations, symmetry, continuity, subthreshold slope, taper."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnboard.errors import InputError
from learnboard.physics.devices import (
    DIODE_EXP_LIMIT,
    digipot_resistance,
    digipot_tap_for_resistance,
    diode_current,
    nmos_current,
    subthreshold_knee,
)

VT, BETA = 0.62, 8.5e-4
volts = st.floats(-0.5, 1.5, allow_nan=False)
gates = st.floats(0.0, 6.0, allow_nan=False)


def test_level1_equations():
    # ohmic: I = beta (VG - Vt - (Va+Vb)/2)(Va - Vb)
    i, _, _ = nmos_current(0.3, 0.1, 2.0, VT, BETA)
    assert i == pytest.approx(BETA * (2.0 - VT - 0.2) * 0.2, rel=1e-14)
    # saturation: I = sign(Va - Vb) ½ beta (VG - Vt - min)^2
    i, _, _ = nmos_current(0.1, 1.0, 1.2, VT, BETA)
    assert i == pytest.approx(-0.5 * BETA * (1.2 - VT - 0.1) ** 2, rel=1e-14)


@settings(max_examples=300, deadline=None)
@given(volts, volts, gates, st.floats(0.02, 0.2))
def test_swapping_terminals_reverses_the_current(va, vb, vg, slope):
    i, da, db = nmos_current(va, vb, vg, VT, BETA, slope)
    j, ja, jb = nmos_current(vb, va, vg, VT, BETA, slope)
    assert i == pytest.approx(-j, rel=1e-12, abs=1e-300)
    assert da == pytest.approx(-jb, rel=1e-12, abs=1e-300)
    assert db == pytest.approx(-ja, rel=1e-12, abs=1e-300)
    assert np.sign(i) == np.sign(va - vb) or i == 0


@settings(max_examples=300, deadline=None)
@given(volts, volts, gates)
def test_derivatives_match_finite_differences(va, vb, vg):
    h = 1e-7
    i, da, db = nmos_current(va, vb, vg, VT, BETA)
    fa = (nmos_current(va + h, vb, vg, VT, BETA)[0] - nmos_current(va - h, vb, vg, VT, BETA)[0]) / (
        2 * h
    )
    fb = (nmos_current(va, vb + h, vg, VT, BETA)[0] - nmos_current(va, vb - h, vg, VT, BETA)[0]) / (
        2 * h
    )
    scale = BETA * 6.0
    assert da == pytest.approx(fa, abs=1e-6 * scale)
    assert db == pytest.approx(fb, abs=1e-6 * scale)


@pytest.mark.parametrize("vds", [0.0, 0.02, 0.3])
def test_current_and_slope_continuous_at_the_subthreshold_knee(vds):
    x0 = subthreshold_knee(0.1)
    vb = 0.1
    eps = 1e-9
    below = nmos_current(vb + vds, vb, VT + vb + x0 - eps, VT, BETA)
    above = nmos_current(vb + vds, vb, VT + vb + x0 + eps, VT, BETA)
    for lo, hi in zip(below, above, strict=True):
        assert lo == pytest.approx(hi, rel=1e-6, abs=1e-15)


def test_continuous_at_the_ohmic_saturation_boundary():
    vg, vb = 1.5, 0.1
    x = vg - VT - vb
    below = nmos_current(vb + x - 1e-10, vb, vg, VT, BETA)
    above = nmos_current(vb + x + 1e-10, vb, vg, VT, BETA)
    for lo, hi in zip(below, above, strict=True):
        assert lo == pytest.approx(hi, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("slope", [0.06, 0.1, 0.15])
def test_subthreshold_slope_in_volts_per_decade(slope):
    # saturation (large vds), gate well below the knee: one decade per `slope` volts
    vg = np.array([0.3, 0.3 + slope])
    i, _, _ = nmos_current(1.0, 0.0, vg, VT, BETA, slope)
    assert np.log10(i[1] / i[0]) == pytest.approx(1.0, rel=1e-12)


def test_equals_level1_above_the_knee_and_exceeds_it_below():
    x0 = subthreshold_knee(0.1)
    vg = VT + 0.05 + np.array([x0 + 1e-3, 0.5 * x0, 0.0, -0.2])
    i, _, _ = nmos_current(0.4, 0.05, vg, VT, BETA)
    level1 = 0.5 * BETA * np.maximum(vg - VT - 0.05, 0) ** 2
    assert i[0] == pytest.approx(level1[0], rel=1e-14)
    assert np.all(i[1:] > level1[1:])
    # 0.1 V/decade below the knee current ½·beta·x0²
    knee = 0.5 * BETA * x0**2
    assert i[3] == pytest.approx(knee * 10 ** (-(x0 + 0.2) / 0.1), rel=1e-12)


def test_diode_shockley_and_linear_continuation():
    nvt = 1.5 * 0.025852
    i, g = diode_current(0.6, 1e-14, 1.5)
    assert i == pytest.approx(1e-14 * np.expm1(0.6 / nvt), rel=1e-12)
    assert g == pytest.approx(1e-14 * np.exp(0.6 / nvt) / nvt, rel=1e-12)
    knee = DIODE_EXP_LIMIT * nvt
    lo = diode_current(knee - 1e-9, 1e-14, 1.5)
    hi = diode_current(knee + 1e-9, 1e-14, 1.5)
    assert lo[0] == pytest.approx(hi[0], rel=1e-6) and lo[1] == pytest.approx(hi[1], rel=1e-6)
    far = diode_current(1e4, 1e-14, 1.5)
    assert np.isfinite(far[0]) and far[1] == pytest.approx(hi[1])
    assert diode_current(-5.0, 1e-14, 1.0)[0] == pytest.approx(-1e-14)


def test_x9c303_taper():
    r = digipot_resistance(np.arange(100))
    assert r[0] == pytest.approx(40.0) and r[-1] == pytest.approx(32e3)
    assert np.allclose(r[1:] / r[:-1], 1.07, atol=1e-3)
    assert digipot_resistance(150) == pytest.approx(32e3)  # no wrap
    assert digipot_resistance(0, r_wiper=40.0) == pytest.approx(80.0)
    lin = digipot_resistance(np.arange(100), taper="linear")
    assert np.allclose(np.diff(lin), (32e3 - 40) / 99)


@pytest.mark.parametrize("taper", ["log", "linear"])
def test_tap_for_resistance_inverts_the_taper(taper):
    taps = np.arange(100)
    r = digipot_resistance(taps, taper=taper, r_wiper=40.0)
    assert np.array_equal(digipot_tap_for_resistance(r, taper=taper, r_wiper=40.0), taps)
    assert digipot_tap_for_resistance(1.0, taper=taper) == 0
    assert digipot_tap_for_resistance(1e9, taper=taper) == 99


def test_bad_taper_is_a_clear_error():
    with pytest.raises(InputError, match="taper"):
        digipot_resistance(3, taper="audio")
    with pytest.raises(InputError, match="r_min"):
        digipot_resistance(3, r_min=100.0, r_max=10.0)
