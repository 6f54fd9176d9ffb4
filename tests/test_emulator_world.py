"""The emulated world driven through the CPython machine layer, checked against ngspice."""

import math

import numpy as np
import pytest
from learnboard.emulator.machine_layer import MachineReset, build
from learnboard.emulator.world import World

from learnboard.physics import Fix


class Gen2:
    """The firmware-side moves on gen2-clln, written from docs/board-format.md."""

    def __init__(self, world):
        self.world = world
        self.machine, self.time = build(world, cost="zero")  # the parts alone: exact device timing
        m = self.machine
        self.spi = m.SPI(0, baudrate=10_000_000, sck=m.Pin(18), mosi=m.Pin(19))
        self.dac_cs = m.Pin(17, m.Pin.OUT, value=1)
        self.latch = m.Pin(20, m.Pin.OUT, value=1)
        self.sel = [m.Pin(p, m.Pin.OUT, value=0) for p in (2, 3, 4, 5)]
        self.adc = [m.ADC(m.Pin(26)), m.ADC(m.Pin(27)), m.ADC(m.Pin(28))]

    def dac(self, ch, code):
        self.dac_cs.value(0)
        word = (ch << 12) | (code << 4)
        self.spi.write(bytes([word >> 8, word & 0xFF]))
        self.dac_cs.value(1)

    def switches(self, bits):
        data = bytearray(16)
        for k in bits:
            data[15 - k // 8] |= 1 << (k % 8)  # last chip first
        self.latch.value(0)
        self.spi.write(data)
        self.latch.value(1)

    def read(self, adc, channel, n=16):
        for i, pin in enumerate(self.sel):
            pin.value((channel >> i) & 1)
        self.time.sleep_us(20)
        return sum(self.adc[adc].read_u16() >> 4 for _ in range(n)) / n


def _inl_bound_lsb(adc):
    ideal = np.arange(1, adc.transitions.size + 1) - 0.5
    return float(np.max(np.abs(adc.transitions - ideal)))


@pytest.mark.ngspice
def test_adc_reading_matches_the_ngspice_node_voltage(ngspice):
    from learnboard.boards.board_circuit import circuit_for_board
    from learnboard.physics.spice import run_ngspice

    world = World("gen2-clln", seed=3)
    g = Gen2(world)
    for ch, code in enumerate((200, 60, 255, 255, 255, 255, 120)):  # x1, x2, bias, y clamp
        g.dac(ch, code)
    g.switches([0, 2 * 7 + 1, 64 + 2 * 12])  # e00 free charge, e07 free discharge, e12 clamped
    g.time.sleep_us(100)
    g.switches([])
    g.time.sleep_us(50)
    board = world.board
    n11 = board.node_index("n11")
    for net, adc in ((0, 0), (1, 1)):
        channel = board.muxes["nodes_free" if net == 0 else "nodes_clamped"].nodes.index(n11)
        code = g.read(adc, channel, n=16)
        measured = code * 3.3 / 4096 / 7.0 + 0.5 * 3.3 / 4096 / 7.0  # mid-code
        circuit = circuit_for_board(board, world.edge_state(net), twin=net, mismatch=3)
        fixes = [Fix(n, v) for n, v in sorted(world.driven(net).items())]
        ref = run_ngspice(circuit, fixes, ngspice=ngspice).node_voltages[n11]
        lsb_node = 3.3 / 4096 / 7.0
        tol = (_inl_bound_lsb(world.adc) + 0.5 + 4 * 1.0 / 4) * lsb_node
        assert 0.05 < ref < 0.45
        print(f"net {net}: adc {measured:.5f} V, ngspice {ref:.5f} V, tol {tol*1e3:.3f} mV")
        assert abs(measured - ref) <= tol, (net, measured, ref, tol)
    # the pulses moved the gates the way the RC law says (rail 8 V, tau 2.2 ms)
    v0 = 5.95 / 2
    gates = world.edge_state(0)
    assert gates[0] > v0 + 0.1 and gates[7] < v0 - 0.1


def test_reads_do_not_resolve_but_actuations_do():
    world = World("gen2-clln", seed=1)
    g = Gen2(world)
    g.dac(0, 200)
    g.time.sleep_us(50)
    g.read(0, 2)
    solves = world.solves
    for ch in range(1, 16):
        g.read(0, ch, n=4)
    assert world.solves == solves
    g.dac(0, 100)
    g.time.sleep_us(50)
    g.read(0, 2, n=1)
    assert world.solves == solves + 1


def test_faults_dead_adc_and_stuck_edge():
    world = World("gen2-clln", seed=1)
    g = Gen2(world)
    g.dac(0, 255)
    g.time.sleep_us(50)
    assert g.read(0, 2) > 2000
    world.faults.dead_adc.add(0)
    assert g.read(0, 2) < 8
    world.set_stuck(0, 0)
    before = world.edge_state(0)[0]
    g.switches([0])
    g.time.sleep_us(500)
    g.switches([])
    assert world.edge_state(0)[0] == before
    assert world.edge_state(1)[0] < before  # the twin copy only leaked


def test_a_power_cycle_mid_pulse_ends_the_pulse():
    # the chain's outputs clear at power-on: the charging gate's switch opens with them
    def pulse(cycle):
        world = World("gen2-clln", seed=1)
        g = Gen2(world)
        g.switches([0])  # network 0, edge 0: charge
        g.time.sleep_us(200)
        if cycle:
            world.power_cycle()
        g.time.sleep_us(800)
        return world, world.edge_state(0)[0]

    cycled, v_cycled = pulse(True)
    kept_on, v_on = pulse(False)
    gate = cycled.edges[0][0]
    assert not gate.charge_on and not cycled._active_gates
    assert kept_on.edges[0][0].charge_on
    v0 = World("gen2-clln", seed=1).edge_state(0)[0]
    # 200 us of a 2.2 ms RC toward 8 V, then only leakage; uncut, the full 1 ms
    rc, rail = 2200.0, 8.0
    assert v_cycled == pytest.approx(rail + (v0 - rail) * math.exp(-200 / rc), abs=2e-3)
    assert v_on == pytest.approx(rail + (v0 - rail) * math.exp(-1000 / rc), abs=2e-3)


def test_seeded_runs_are_reproducible():
    def run(seed):
        g = Gen2(World("gen2-clln", seed=seed))
        g.dac(0, 180)
        g.time.sleep_us(50)
        return [g.adc[0].read_u16() for _ in range(20)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_gen1_x9c_through_the_cs_chain():
    world = World("gen1-digipot", seed=2)
    m, _ = build(world)
    spi = m.SPI(0, baudrate=10_000_000)
    latch, oe = m.Pin(17, m.Pin.OUT, value=1), m.Pin(22, m.Pin.OUT, value=1)
    ud, inc = m.Pin(20, m.Pin.OUT, value=0), m.Pin(21, m.Pin.OUT, value=0)

    def cs_chain(selected):
        data = bytearray(b"\xff" * 4)  # every CS high (deselected)
        for k in selected:
            data[3 - k // 8] &= ~(1 << (k % 8)) & 0xFF
        latch.value(0)
        spi.write(data)
        latch.value(1)

    cs_chain([])
    oe.value(0)
    pot = world.edges[0][3]
    start = pot.tap
    cs_chain([3])
    ud.value(1)
    for _ in range(4):
        inc.value(1)
        inc.value(0)
    cs_chain([])  # INC low: no store
    assert pot.tap == start + 4 and pot.eeprom_writes == 0
    assert world.edges[1][3].tap == start  # the twin's pot was not selected
    cs_chain([3])
    inc.value(1)
    cs_chain([])  # deselect with INC high: EEPROM store
    assert pot.eeprom_writes == 1 and pot.stored_tap == start + 4
    world.on_reset("power-on")
    assert pot.tap == start + 4


def test_watchdog_and_reset_raise_machine_reset():
    world = World("gen2-clln", seed=1)
    m, t = build(world)
    wdt = m.WDT(timeout=100)
    t.sleep_ms(50)
    wdt.feed()
    t.sleep_ms(60)
    with pytest.raises(MachineReset) as exc:
        t.sleep_ms(60)
    assert exc.value.kind == "watchdog"
    with pytest.raises(MachineReset):
        m.reset()


def test_gen1_pwm_inputs_settle_to_the_quantised_voltage():
    world = World("gen1-digipot", seed=2)
    m, t = build(world)
    pwm = m.PWM(m.Pin(6), freq=30000, duty_u16=40000)
    x1 = world.board.node_index("x1")
    expected = round(40000 / 16) / 4096 * 3.3 * 0.15  # 12-bit counter
    t.sleep_us(50)  # tau = 2000 us / ln 2**13 = 222 us
    assert world.true_state(0).node_voltages[x1] < 0.5 * expected  # RC still charging
    t.sleep_us(2000)
    assert world.true_state(0).node_voltages[x1] == pytest.approx(expected, abs=0.5 * 3.3 * 0.15 / 4096)
    assert world.true_state(1).node_voltages[x1] == 0.0  # the clamped copy has its own PWM (GP7)
    pwm.deinit()
    with pytest.raises(OSError):
        m.I2C(0).writeto(0x48, b"\x00")
