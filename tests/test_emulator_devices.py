"""Part models of the emulator, each against its datasheet behaviour or analytic curve."""

import math

import numpy as np
import pytest
from learnboard.emulator.devices import (
    AdcModel,
    AnalogMux,
    GateCap,
    PwmRc,
    ShiftChain,
    SpiDac,
    SpiDigipot,
    VirtualClock,
    X9cDigipot,
)
from learnboard.emulator.devices.adc import E11_CODES


def _pulse(pot, n, up, t=0):
    pot.set_ud(1 if up else 0, t)
    for _ in range(n):
        pot.set_inc(1, t)
        pot.set_inc(0, t)  # falling edge moves


def test_x9c_inc_falling_edges_move_taps_and_stop_at_the_ends():
    pot = X9cDigipot(stored_tap=10)
    pot.set_inc(0, 0)
    pot.set_cs(0, 0)
    _pulse(pot, 5, up=True)
    assert pot.tap == 15
    _pulse(pot, 30, up=False)
    assert pot.tap == 0 and pot.end_stop_hits == 15
    _pulse(pot, 150, up=True)
    assert pot.tap == 99 and pot.end_stop_hits == 15 + 51


def test_x9c_ignores_inc_while_deselected():
    pot = X9cDigipot(stored_tap=50)
    _pulse(pot, 7, up=True)  # CS still high
    assert pot.tap == 50


def test_x9c_eeprom_store_only_on_a_wrong_deselect():
    pot = X9cDigipot(stored_tap=3)
    pot.set_inc(0, 0)
    pot.set_cs(0, 0)
    _pulse(pot, 4, up=True)
    pot.set_cs(1, 10)  # INC low: correct deselect, no store
    assert (pot.eeprom_writes, pot.stored_tap) == (0, 3)
    pot.power_cycle()
    assert pot.tap == 3  # power-up restores the stored tap
    pot.set_inc(0, 100)
    pot.set_cs(0, 100)
    _pulse(pot, 6, up=True, t=100)
    pot.set_inc(1, 200)
    pot.set_cs(1, 200)  # INC high: stores (wear)
    assert (pot.eeprom_writes, pot.stored_tap) == (1, 9)
    pot.power_cycle()
    assert pot.tap == 9


def test_x9c_taper_spread_and_make_before_break():
    nominal = X9cDigipot(r_wiper=40.0)
    spread = X9cDigipot(r_wiper=40.0, r_scale=1.15)
    assert nominal.resistance_of(0) == pytest.approx(80.0)
    assert nominal.resistance_of(99) == pytest.approx(32040.0)
    ratio = nominal.track(51) / nominal.track(50)
    assert ratio == pytest.approx((32000 / 40) ** (1 / 99))  # ≈ ×1.07 per tap
    assert spread.resistance_of(99) - 40 == pytest.approx(1.15 * 32000)
    pot = X9cDigipot(stored_tap=50, settle_us=100)
    pot.set_inc(0, 0)
    pot.set_cs(0, 0)
    _pulse(pot, 1, up=True, t=1000)
    assert pot.resistance(1050) < pot.resistance_of(50) < pot.resistance(1200)


def test_spi_digipot_commands():
    pot = SpiDigipot(n_wipers=2, n_taps=129)
    assert pot.taps == [64, 64]
    pot.select(True, 0)
    pot.spi_write(bytes([0x10, 100, 0x00, 0xFF, 0x01, 0xF4]), 0)  # w1 := 100, w0 := 255→128, w0 := 500→128
    pot.select(False, 0)
    assert pot.taps == [128, 100]
    pot.spi_write(bytes([0x00, 5]), 0)  # deselected: ignored
    assert pot.taps == [128, 100]


def test_adc_quantisation_and_noise_spread():
    ideal = AdcModel(noise_lsb=0.0, spikes=())
    lsb = 3.3 / 4096
    assert ideal.convert(1000.2 * lsb) == 1000
    assert ideal.convert(1000.6 * lsb) == 1001
    assert ideal.read_u16(3.3) == 0xFFFF
    noisy = AdcModel(noise_lsb=1.0, spikes=(), seed=4)
    codes = noisy.convert(1000.5 * lsb, n=20000)
    assert codes.mean() == pytest.approx(1000.5, abs=0.05)
    # 1 LSB rms input noise plus quantisation (1/12 LSB²)
    assert codes.std() == pytest.approx(math.sqrt(1 + 1 / 12), rel=0.05)


def test_adc_e11_spikes_are_wide_codes():
    adc = AdcModel(noise_lsb=0.0, spike_lsb=8.0)
    ramp = adc.convert(np.linspace(0, 3.3, 4096 * 64, endpoint=False))
    hist = np.bincount(ramp, minlength=4096)[1:-1] / 64.0  # measured code widths in LSB
    dnl = hist - 1.0
    spikes = np.array(E11_CODES) - 1
    assert np.all(dnl[spikes] > 7.5)
    others = np.delete(dnl, spikes)
    assert np.all(np.abs(others) < 0.1)
    assert ramp.max() == 4095 and ramp.min() == 0  # full scale kept


def test_adc_seeded_reproducibility():
    a, b, c = AdcModel(seed=7), AdcModel(seed=7), AdcModel(seed=8)
    x, y, z = (m.convert(1.0, n=100) for m in (a, b, c))
    assert np.array_equal(x, y) and not np.array_equal(x, z)


def test_gate_rc_charging_matches_the_analytic_curve():
    gate = GateCap(c=2.2e-6, r=1000.0, rail=8.0, v0=1.0)
    gate.set_switches(True, False, 0)
    for t in (100, 500, 2200, 10000):
        expected = 8.0 - 7.0 * math.exp(-t * 1e-6 / 2.2e-3)
        assert gate.advance(t) == pytest.approx(expected, rel=1e-12)
    gate.set_switches(False, True, 10000)
    v1 = gate.v
    assert gate.advance(10100) == pytest.approx(v1 * math.exp(-100e-6 / 2.2e-3), rel=1e-12)


def test_gate_leakage_drift_rate_and_pulse_bias():
    gate = GateCap(v0=3.0, leak=3e-4)
    gate.advance(10_000_000)  # 10 s idle
    assert 3.0 - gate.v == pytest.approx(3e-3, rel=1e-9)
    plain, skewed = GateCap(v0=2.0), GateCap(v0=2.0, skew_us=1.0)
    for g in (plain, skewed):
        g.set_switches(True, False, 0)
        g.set_switches(False, False, 100)
    dv = plain.v - 2.0
    assert dv == pytest.approx(6.0 * (1 - math.exp(-100 / 2200)))
    assert skewed.v - 2.0 == pytest.approx(6.0 * (1 - math.exp(-101 / 2200)))


def test_shift_chain_bit_order_and_latch():
    chain = ShiftChain(16)
    chain.set_latch(0)
    chain.spi_write(bytes([0b1000_0000, 0b0000_0010]))  # last chip first
    assert chain.output(15) == 0  # not latched yet
    assert chain.set_latch(1)
    assert [k for k in range(16) if chain.output(k)] == [1, 15]
    chain.spi_write(b"\xff\xff")  # ADG1414 SYNC high: ignored
    assert chain.latched == chain.shift
    sr = ShiftChain(8, needs_select=False)
    sr.set_oe(1)
    assert sr.output(0) == 1  # pulled up while disabled
    sr.spi_write(b"\x00")
    sr.set_latch(0)
    sr.set_latch(1)
    sr.set_oe(0)
    assert sr.output(0) == 0


def test_spi_dac_word_format_and_settling():
    dac = SpiDac(channels=8, bits=8, vref=2.5, gain=0.18, settle_us=10.0)
    dac.select(True, 0)
    dac.spi_write(bytes([0x30 | (200 >> 4), (200 << 4) & 0xF0]), 0)  # ch 3, code 200
    dac.select(False, 0)
    assert dac.codes[3] == 200
    full = 200 / 256 * 2.5 * 0.18
    assert dac.output(3, 10) == pytest.approx(full, abs=0.5 * 2.5 * 0.18 / 256)
    assert dac.output(3, 2) < 0.9 * full
    pwm = PwmRc(bits=12, vref=3.3, gain=0.15, settle_us=2000)
    pwm.set_duty_u16(32768, 0)
    assert pwm.duty == 2048 and pwm.output(2000) == pytest.approx(0.2475, abs=0.5 * 3.3 * 0.15 / 4096)


def test_mux_selects_and_settles():
    mux = AnalogMux(4, gain=7.0, enable_level=1, tau_us=2.0)
    assert not mux.connected
    mux.set_enable(1, 0)
    for bit, level in enumerate((1, 0, 1, 0)):
        mux.set_select(bit, level, 0)
    assert mux.channel == 5
    assert mux.output(0.3, 20) == pytest.approx(2.1, rel=1e-4)


def test_virtual_clock_ticks_wrap_and_sleeps():
    clock = VirtualClock(tick_cost_us=1)
    t0 = clock.ticks_us()
    clock.sleep_ms(3)
    assert clock.ticks_diff(clock.ticks_us(), t0) == 3001
    assert clock.ticks_diff(5, (1 << 30) - 5) == 10  # across the wrap
    seen = []
    clock.on_advance(seen.append)
    clock.sleep_us(7)
    assert seen == [clock.now_us]
    with pytest.raises(ValueError):
        clock.advance_us(-1)
