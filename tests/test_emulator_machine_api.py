"""The emulated ``machine``, ``time`` and ``select`` offer the firmware nothing a board's
MicroPython lacks: every public name of the modules and of their classes exists in
MicroPython's RP2040 port, and the firmware uses no private name of them (the
emulator's plumbing) and probes for no emulator-only method."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from learnboard.emulator import machine_layer
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer

from tests.mpvm import run_vm
from tests.test_vm_machine_drives_the_world import VMLIB

ROOT = Path(__file__).resolve().parents[1]

# What MicroPython's ports/rp2 offers (the MP_ROM_QSTR names of the module globals and
# class locals tables, upstream micropython at the commit the project's VM is built
# from): the machine module from ports/rp2/modmachine.c (MICROPY_PY_MACHINE_EXTRA_GLOBALS)
# + extmod/modmachine.c with the features ports/rp2/mpconfigport.h enables; the classes
# from extmod/machine_{adc,spi,i2c,pwm,wdt,signal}.c + ports/rp2/machine_{adc,pin}.c;
# time from extmod/modtime.c; select from extmod/modselect.c.
RP2_MACHINE = {
    "ADC", "I2C", "I2CTarget", "I2S", "PWM", "PWRON_RESET", "Pin", "RTC", "SPI", "Signal",
    "SoftI2C", "SoftSPI", "Timer", "UART", "USBDevice", "WDT", "WDT_RESET", "bitstream",
    "bootloader", "deepsleep", "dht_readinto", "disable_irq", "enable_irq", "freq", "idle",
    "lightsleep", "mem16", "mem32", "mem8", "reset", "reset_cause", "soft_reset",
    "time_pulse_us", "unique_id",
}
RP2_CLASSES = {
    "Pin": {"ALT", "ALT_GPCK", "ALT_I2C", "ALT_PIO0", "ALT_PIO1", "ALT_PWM", "ALT_SIO",
            "ALT_SPI", "ALT_UART", "ALT_USB", "IN", "IRQ_FALLING", "IRQ_RISING",
            "OPEN_DRAIN", "OUT", "PULL_DOWN", "PULL_UP", "board", "cpu", "high", "init",
            "irq", "low", "off", "on", "toggle", "value"},
    # extmod/machine_adc.c's optional methods (init, read_uv, ...) are off on rp2
    "ADC": {"CORE_TEMP", "read_u16"},
    "SPI": {"LSB", "MSB", "deinit", "init", "read", "readinto", "write", "write_readinto"},
    "I2C": {"deinit", "init", "readfrom", "readfrom_into", "readfrom_mem",
            "readfrom_mem_into", "readinto", "scan", "start", "stop", "write", "writeto",
            "writeto_mem", "writevto"},
    "PWM": {"deinit", "duty_ns", "duty_u16", "freq", "init"},
    "WDT": {"feed"},
}
RP2_TIME = {"gmtime", "localtime", "mktime", "sleep", "sleep_ms", "sleep_us", "ticks_add",
            "ticks_cpu", "ticks_diff", "ticks_ms", "ticks_us", "time", "time_ns"}
RP2_SELECT = {"POLLERR", "POLLHUP", "POLLIN", "POLLOUT", "ipoll", "modify", "poll",
              "register", "select", "unregister"}


def _public(names) -> set:
    return {n for n in names if not n.startswith("_")}


def _check(machine_names: set, classes: dict, time_names: set, select_names=None) -> None:
    assert machine_names <= RP2_MACHINE, machine_names - RP2_MACHINE
    for cls, names in classes.items():
        assert names <= RP2_CLASSES[cls], (cls, names - RP2_CLASSES[cls])
    assert time_names <= RP2_TIME, time_names - RP2_TIME
    if select_names is not None:
        assert select_names <= RP2_SELECT, select_names - RP2_SELECT


def test_the_vms_machine_time_and_select_have_only_rp2_names(tmp_path, monkeypatch):
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = """
import json, machine, time, select
def pub(o):
    return [n for n in dir(o) if not n.startswith('_')]
print(json.dumps({"machine": pub(machine), "time": pub(time), "select": pub(select),
                  "classes": {c: pub(getattr(machine, c)) for c in
                              ("Pin", "ADC", "SPI", "I2C", "PWM", "WDT") if hasattr(machine, c)}}))
"""
    with WorldServer(World("gen2-clln", seed=0), sock):
        proc = run_vm(src, path=[VMLIB])
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert {"Pin", "ADC", "SPI", "I2C", "PWM"} <= set(got["classes"])
    _check(set(got["machine"]), {c: set(v) for c, v in got["classes"].items()},
           set(got["time"]), set(got["select"]))


def test_the_inprocess_machine_and_time_have_only_rp2_names():
    machine, utime = machine_layer.build(World("gen2-clln", seed=0))
    classes = {c: _public(dir(getattr(machine, c))) for c in RP2_CLASSES
               if hasattr(machine, c)}
    assert set(classes) == set(RP2_CLASSES)
    _check(_public(vars(machine)), classes, _public(vars(utime)))


def _firmware_sources():
    return sorted((ROOT / "firmware").rglob("*.py"))


def test_the_firmware_uses_no_private_name_of_machine_time_or_select():
    # machine reaches the HAL as ``machine``, ``self.m`` or ``m``; the clock as ``time``
    owners = {"machine", "m", "time", "utime", "select", "clock"}
    found = []
    for path in _firmware_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__"):
                v = node.value
                name = v.id if isinstance(v, ast.Name) else \
                    v.attr if isinstance(v, ast.Attribute) else None
                if name in owners:
                    found.append(f"{path.name}:{node.lineno} {name}.{node.attr}")
    assert not found


def test_the_firmware_probes_for_no_emulator_extension():
    pattern = re.compile(r"read_u16_sum|adc_scan|LB_WORLD|_lbboard")
    hits = [f"{p.name}:{i}" for p in _firmware_sources()
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line) and not line.lstrip().startswith("#")]
    assert not hits
