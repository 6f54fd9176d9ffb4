"""A minimal ``machine`` module for the MicroPython VM tests (no physics): pins and buses
record nothing, ADC channels return fixed codes with a small allocation-free wobble.
Written into a temp dir as ``machine.py`` by the tests."""

FAKE_MACHINE = r'''
class Pin:
    OUT = 1
    IN = 0

    def __init__(self, n, mode=0, value=None):
        self.n = n
        self.v = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class SPI:
    def __init__(self, id, baudrate=0, sck=None, mosi=None, miso=None):
        self.writes = 0

    def write(self, buf):
        self.writes += 1


class I2C:
    def __init__(self, id, sda=None, scl=None, freq=0):
        pass

    def writeto(self, addr, buf):
        pass

    def readfrom_into(self, addr, buf):  # a current monitor: 0, conversion ready
        buf[0] = 0
        buf[1] = 2


class PWM:
    def __init__(self, pin):
        self.d = 0

    def freq(self, f):
        pass

    def duty_u16(self, d):
        self.d = d


# 12-bit codes per ADC channel: nodes (free, clamped), gates; the wobble makes the
# drops differ between the two networks so the rule emits moves.
BASE = [1500, 1500, 2000, 2000]
WOBBLE = [0, 700, 0, 0]


class ADC:
    def __init__(self, pin):
        self.ch = pin - 26
        self.k = 0

    def read_u16(self):
        self.k = (self.k + 1) & 0xFF
        return (BASE[self.ch] + (self.k * 37) % (WOBBLE[self.ch] + 1)) << 4


PWRON_RESET = 1
WDT_RESET = 3


def reset_cause():
    return PWRON_RESET


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.fed = 0

    def feed(self):
        self.fed += 1


def reset():
    raise SystemExit
'''


VM_HARNESS = r'''
import time


class Clock:
    ticks_us = staticmethod(time.ticks_us)
    ticks_ms = staticmethod(time.ticks_ms)
    ticks_diff = staticmethod(time.ticks_diff)

    def sleep_us(self, us):
        pass


class NullPort:
    def read(self):
        return None

    def write(self, data):
        pass
'''
"""A clock that never waits and a port that says nothing: the firmware's ``App`` runs its
steps in the VM with nothing attached (prepend to a test script)."""


def start_firmware(folder, compiled, exe):
    """The firmware's ``main.main`` with the fake machine, in the VM ``exe`` (192 KB heap),
    its console on pipes (``proc.stdin`` / ``proc.stdout``): writes ``fake_machine.py`` and
    ``board.json`` (the compiled description) into ``folder``."""
    import os
    import subprocess

    from learnboard.firmware import FIRMWARE_DIR

    (folder / "fake_machine.py").write_text(FAKE_MACHINE)
    compiled.write(folder / "board.json")
    src = (f"import fake_machine, main\n"
           f"main.main({str(folder / 'board.json')!r}, machine=fake_machine)\n")
    env = dict(os.environ, MICROPYPATH=f"{folder}:{FIRMWARE_DIR}")
    return subprocess.Popen([exe, "-X", "heapsize=192K", "-c", src], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def pipe_link(proc, **options):
    """A host ``Link`` over ``start_firmware``'s pipes, on copies of their descriptors:
    the link closes its copies and the process object its own, so neither closes a
    descriptor number that something else has been given since (a later test's pipe)."""
    import os

    from learnboard.host.link import Link
    from learnboard.host.transport import FdTransport

    return Link(FdTransport(os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno())), **options)
