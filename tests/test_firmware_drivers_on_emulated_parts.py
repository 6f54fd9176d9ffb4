"""SPI ADC, SPI digipot and I2C current-monitor drivers (lbfw.hal) against the emulated
parts (emulator/devices/{spi_adc,current_sense,digipot}.py wired by World), under CPython
through the emulator's machine layer and in the real MicroPython VM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from learnboard.emulator.devices.current_sense import CurrentSense
from learnboard.emulator.devices.spi_adc import SpiAdc
from learnboard.emulator.machine_layer import build
from learnboard.emulator.world import World
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError

from .mpvm import run_vm

BOARD = Path(__file__).parent / "boards" / "spi-parts.toml"


class _Clock:
    def __init__(self, clock):
        self.ticks_us, self.ticks_diff, self.sleep_us = clock.ticks_us, clock.ticks_diff, clock.sleep_us
        self.ticks_ms = clock.ticks_ms


@pytest.fixture
def rig():
    board = load_board(BOARD)
    world = World(board, seed=3)
    machine, _ = build(world)
    body = compile_board(board).body
    hal = Hal(body, machine, _Clock(world.clock))
    return board, body, world, hal


def _drive_inputs(hal, body, codes):
    for p, code in zip(body["ins"], codes, strict=True):
        for line in p["d"]:
            hal.drive(hal.vline(line), code)
    hal.settle()


@pytest.mark.parametrize("bits", [12, 10])
def test_spi_adc_frame_answers_the_addressed_channel(bits):
    adc = SpiAdc(bits, 8, convert=lambda ch: 100 * ch + 7)
    for ch in range(8):
        w = (0x18 | ch) << (bits + 2)  # MCP3208: 0x06|D2, D1D0<<6, 0; MCP3008: 0x01, 0x80|ch<<4, 0
        adc.select(True)
        rx = adc.transfer(bytes([w >> 16, (w >> 8) & 0xFF, w & 0xFF]))
        adc.select(False)
        assert int.from_bytes(rx, "big") == 100 * ch + 7
    assert adc.transfer(b"\x06\x00\x00") == bytes(3)  # deselected: DOUT floats (reads 0)


def test_spi_adc_reads_node_voltages(rig):
    board, body, world, hal = rig
    _drive_inputs(hal, body, [3000, 1500])
    vpc = body["adc"]["vref"] / 4095 / body["mux"][0]["g"]
    for net in range(2):
        out = [0] * board.n_nodes
        hal.read_nodes(net, out)
        true = world.true_state(net).node_voltages
        assert np.allclose(np.array(out) * vpc, true, atol=4 * vpc), (net, out, true)
    assert true[board.node_index("x1")] > 0.3  # the inputs really are driven


def test_spi_digipot_moves_every_network_and_clamps(rig):
    board, body, world, hal = rig
    hal.init_taps([64] * board.n_edges)
    hal.move(2, 10)
    hal.move(3, -5)
    for net in range(2):
        taps = world.edge_state(net)
        assert taps[2] == 74 and taps[3] == 59 and taps[0] == 64, (net, taps)
    hal.move(2, 500)  # beyond the last tap: clamped to it, tracked as such
    assert world.edge_state(1)[2] == 128 and hal.ptap[2] == 128
    r_before = world.true_state(0).power
    hal.set_tap(0, 4)
    _drive_inputs(hal, body, [3000, 3000])
    assert world.true_state(0).power != r_before  # the physics follows the wiper


def test_current_sense_power_is_the_sensed_drivers_power(rig):
    board, body, world, hal = rig
    hal.init_taps([20] * board.n_edges)
    _drive_inputs(hal, body, [3500, 0])  # x2's driver at 0 V delivers no power
    p = hal.read_power()
    st = world.true_state(0)
    # 10 uV shunt LSB over 10 ohm (1 uA) and 4 mV bus LSB: a few uW at most
    assert p == pytest.approx(st.power, rel=0.03, abs=2e-6)
    assert p > 1e-5
    _drive_inputs(hal, body, [3500, 3500])  # two sources: the x1 driver's share only
    assert hal.read_power() < world.true_state(0).power


def test_current_sense_registers():
    cs = CurrentSense(0x40, 0.1, measure=lambda: (-0.0125, 1.2), noise_lsb=0.0)
    cs.write(b"\x01")
    # -1.25 mV / 10 uV, and this device's offset (PGA /8 at power-on: 40 uV typical)
    off = cs.offset_volts / 10e-6
    assert int.from_bytes(cs.read(2), "big", signed=True) == round(-125 + off)
    cs.write(b"\x02")
    assert int.from_bytes(cs.read(2), "big") >> 3 == 300  # 1.2 V / 4 mV


def test_board_without_current_sense_keeps_its_hash():
    # the optional table adds a key only when present (profiles' hashes unchanged)
    assert "isense" not in compile_board(load_board("gen2-clln")).body
    assert "isense" in compile_board(load_board(BOARD)).body


def test_current_sense_errors_name_the_field(tmp_path):
    text = BOARD.read_text().replace('net = 0\nnode = "x1"', 'net = 0\nnode = "gnd"')
    p = tmp_path / "b.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=r"current_sense\[0\].node"):
        load_board(p)
    p.write_text(BOARD.read_text().replace('bus = "i2c0"\naddress', 'bus = "i2c9"\naddress'))
    with pytest.raises(InputError, match="i2c"):
        load_board(p)


# The same drivers in the real VM, against MicroPython-side models of the parts (the VM's
# emulator link carries writes only), with the node read under heap_lock.
VM_MACHINE = r'''
class Pin:
    OUT = 1
    IN = 0
    lv = {}
    def __init__(self, n, mode=0, value=None):
        self.n = n
    def value(self, v=None):
        if v is None:
            return Pin.lv.get(self.n, 0)
        Pin.lv[self.n] = v

WOBBLE = False


class SPI:
    k = 0
    last = bytearray(4)  # the last two 2-byte writes, without allocating
    n = 0
    def __init__(self, id, baudrate=0, sck=None, mosi=None, miso=None):
        pass
    def write(self, buf):
        if len(buf) == 2:
            k = (SPI.n & 1) * 2
            SPI.last[k] = buf[0]
            SPI.last[k + 1] = buf[1]
            SPI.n += 1
    def write_readinto(self, tx, rx):
        # MCP3208: start bit, SGL, D2..D0, then sample + null, 12 bits
        w = (tx[0] << 16) | (tx[1] << 8) | tx[2]
        ch = (w >> 14) & 7
        code = 1000 + ch
        if WOBBLE and ch == 1:  # the clamped network's reads differ: the rule moves taps
            SPI.k = (SPI.k + 1) & 0xFF
            code += (SPI.k * 37) % 300
        rx[0] = 0
        rx[1] = (code >> 8) & 0xF
        rx[2] = code & 0xFF

class I2C:
    def __init__(self, id, sda=None, scl=None, freq=0):
        self.ptr = 0
    def writeto(self, addr, buf):
        self.ptr = buf[0]
    sh = 0xFF38  # -2 mV shunt (the zero read at boot), 1.2 V bus
    def readfrom_into(self, addr, buf):
        v = {1: I2C.sh, 2: ((1200 // 4) << 3) | 2}[self.ptr]  # (bit 1: conversion ready)
        buf[0] = v >> 8
        buf[1] = v & 0xFF

class PWM:
    def __init__(self, pin):
        pass
    def freq(self, f):
        pass
    def duty_u16(self, d):
        pass
'''


@pytest.mark.vm
def test_drivers_in_the_vm(tmp_path):
    body = compile_board(load_board(BOARD)).body
    (tmp_path / "machine.py").write_text(VM_MACHINE)
    (tmp_path / "board_body.py").write_text(f"BODY = {body!r}\n".replace("None", "None"))
    src = """
import machine, micropython
from board_body import BODY
from lbfw import hal
class C:
    def ticks_us(self): return 0
    def ticks_diff(self, a, b): return a - b
    def sleep_us(self, us): pass
h = hal.Hal(BODY, machine, C())
out = [0] * len(BODY['nodes'])
h.read_nodes(0, out)
micropython.heap_lock()
h.read_nodes(1, out)
h.move(2, 3)
micropython.heap_unlock()
print(out)
print(list(machine.SPI.last))
machine.I2C.sh = 300  # +3 mV
print(h.read_power())
"""
    lines = run_vm(src, path=[tmp_path]).stdout.decode().split("\n")
    out = eval(lines[0])
    rd = body["nrd"][1]
    assert out == [1000 + body["mux"][r[0]]["ac"] if r[0] >= 0 else 0 for r in rd]
    # both networks' chips got a 16-bit write of wiper 0 to tap 64 + 3
    assert eval(lines[1]) == [0, 67, 0, 67]
    # 5 mV above the boot zero over 10 ohm, less the IN- pin's 1.2 V / 320 kOhm, at 1.2 V
    assert float(lines[2]) == pytest.approx((5e-3 / 10.0 - 1.2 / 320e3) * 1.2, rel=1e-6)


def test_measured_power_in_infer_and_telemetry():
    from learnboard.cli.connection import LinkedInProcessBoard

    with LinkedInProcessBoard(BOARD, seed=1) as b:
        link = b.link
        assert "power_sense" in link.hello()["caps"]
        r = link.call("infer", x=[0.4, 0.0])
        st = b.world.true_state(0)
        # one driven source (x2 at 0 V): the monitor's power is the free network's dissipation
        assert r["pwr_m"] == pytest.approx(st.power, rel=0.05, abs=3e-6)
        assert r["pwr_f"] == pytest.approx(st.power, rel=0.1)
        assert r["pwr"] == pytest.approx(st.power + b.world.true_state(1).power, rel=0.1)
        link.call("upload_examples", start=0, x=[[0.3, 0.1], [0.1, 0.3]],
                  y=[[0.05, 0.05], [0.05, 0.06]], clear=True)
        link.call("set_params", tlm_every=5)
        link.call("train", steps=10)
        t = link.next_telemetry(timeout=20)
        # the x1 driver's share at the last example's inputs (may be < 0: x2 higher)
        assert t is not None and t["pwr"] > 0 and abs(t["pwr_m"]) < 2 * t["pwr"] + 1e-5


def test_boards_without_monitor_send_no_measured_power():
    from learnboard.cli.connection import LinkedInProcessBoard

    with LinkedInProcessBoard("gen1-digipot", seed=1) as b:
        assert "power_sense" not in b.link.hello()["caps"]
        assert "pwr_m" not in b.link.call("infer", x=[0.2, 0.1])


@pytest.mark.vm
def test_thousand_locked_steps_in_vm_with_spi_parts(tmp_path):
    from .test_firmware_app_vm import STEPS

    (tmp_path / "fake_machine.py").write_text(VM_MACHINE.replace("WOBBLE = False",
                                                                 "WOBBLE = True"))
    compile_board(load_board(BOARD)).write(tmp_path / "board.json")
    src = f"PATH = {str(tmp_path / 'board.json')!r}\nORDER = 'shuffle'\n" + STEPS
    out = run_vm(src, path=[tmp_path]).stdout.decode()
    facts = dict(line.split(" ", 1) for line in out.splitlines())
    fields = facts["steps"].split()
    assert fields[0] == "1000" and int(fields[2]) > 0  # taps moved over SPI
    assert int(fields[6]) == 0  # no heap consumed by 1000 locked steps
    assert facts["us_per_step_with_tlm"].endswith("True")  # telemetry with pwr_m: no fault
