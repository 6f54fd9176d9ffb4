"""A CPython ``machine`` (and ``time``) module whose calls drive an emulated :class:`World`.

This is what the firmware's hardware layer receives under CPython in the fast in-process
mode: the MicroPython API (``Pin``, ``ADC``, ``SPI``, ``I2C``, ``PWM``, ``WDT``, ``reset``,
``soft_reset``, ``freq``, ``unique_id``, ``idle``, ``lightsleep``) with RP2040 numbering,
and a ``time`` module on the world's virtual clock. ``reset()``, ``soft_reset()`` and an
expired watchdog raise :class:`MachineReset`, which the in-process runner catches to
restart the firmware.

    machine, utime = build(World("gen2-clln", seed=1))
"""

from __future__ import annotations

import errno
import types

from learnboard.emulator.world import World

ADC_PIN_BASE = 26  # RP2040: GPIO 26..29 are ADC inputs 0..3, input 4 is the temperature sensor


class MachineReset(Exception):
    """The emulated microcontroller reset (``kind``: ``"hard"``, ``"soft"``, ``"watchdog"``)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def _gpio(pin) -> int:
    if hasattr(pin, "id"):
        return pin.id
    if isinstance(pin, str):
        name = pin.upper()
        if not name.startswith("GP") or not name[2:].isdigit():
            raise ValueError(f"invalid pin {pin!r}")
        pin = int(name[2:])
    if not 0 <= int(pin) < 30:
        raise ValueError(f"invalid pin {pin!r} (RP2040: 0..29)")
    return int(pin)


def build(world: World, *, blocks: bool = True) -> tuple[types.ModuleType, types.ModuleType]:
    """Return ``(machine, time)`` module objects bound to ``world``. ``blocks=False``
    converts one sample per ``ADC.read_u16`` call instead of answering runs of reads
    from blocks (the reference the tests compare the blocks with)."""
    clock = world.clock
    blk = _Block()  # the ADC conversions fetched ahead (see _Block)

    class Pin:
        IN, OUT, OPEN_DRAIN, ALT = 0, 1, 2, 3
        PULL_UP, PULL_DOWN = 1, 2
        IRQ_FALLING, IRQ_RISING = 4, 8

        def __init__(self, id, mode=-1, pull=-1, *, value=None, **_):
            self.id = _gpio(id)
            self.init(mode, pull, value=value)

        def init(self, mode=-1, pull=-1, *, value=None, **_):
            if mode != -1:
                self.mode = mode
            if value is not None:
                self.value(value)

        def value(self, x=None):
            if x is None:
                return world.pins.get(self.id, 0)
            blk.ch = -1
            world.set_pin(self.id, 1 if x else 0)
            return None

        __call__ = value

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high, low = on, off

        def toggle(self):
            self.value(1 - world.pins.get(self.id, 0))

        def irq(self, *a, **k):
            return None

        def __repr__(self):
            return f"Pin(GPIO{self.id})"

    class ADC:
        CORE_TEMP = 4

        def __init__(self, pin, **_):
            if hasattr(pin, "id") or (isinstance(pin, int) and pin >= ADC_PIN_BASE) or \
                    isinstance(pin, str):
                ch = _gpio(pin) - ADC_PIN_BASE
            else:
                ch = int(pin)
            if not 0 <= ch <= 4:
                raise ValueError(f"no ADC on {pin!r}")
            self.channel = ch

        def read_u16(self) -> int:
            if not blocks:
                return world.adc_read_u16(self.channel)
            b = blk
            if b.ch == self.channel and clock._us == b.end:
                b.streak += 1
                i = b.pos
                if i < len(b.codes):
                    b.pos = i + 1
                    return b.codes[i]
                return b.fetch(world, self.channel, False)
            return b.fetch(world, self.channel, True)

    class SPI:
        MSB, LSB = 1, 0

        def __init__(self, id, baudrate=1_000_000, **kw):
            self.id = int(id)
            self.init(baudrate, **kw)

        def init(self, baudrate=None, **kw):
            if baudrate is not None:
                self.baudrate = int(baudrate)

        def deinit(self):
            pass

        def write(self, buf) -> None:
            blk.ch = -1
            world.spi_write(self.id, bytes(buf), self.baudrate)

        def read(self, nbytes, write=0) -> bytes:
            # MISO from the world (an SPI ADC; zeros where no part drives it)
            blk.ch = -1
            return world.spi_transfer(self.id, bytes([write]) * nbytes, self.baudrate)

        def readinto(self, buf, write=0) -> None:
            buf[:] = self.read(len(buf), write)

        def write_readinto(self, wbuf, rbuf) -> None:
            blk.ch = -1
            rbuf[:] = world.spi_transfer(self.id, bytes(wbuf), self.baudrate)

    class I2C:
        def __init__(self, id, *, scl=None, sda=None, freq=400_000, **_):
            self.id = int(id)
            self.freq = int(freq)

        def scan(self) -> list[int]:
            return world.i2c_addresses(self.id)

        def writeto(self, addr, buf, stop=True) -> int:
            blk.ch = -1
            if not world.i2c_write(self.id, addr, bytes(buf)):
                raise OSError(errno.ENODEV, "ENODEV")
            clock.advance_us((len(buf) + 1) * 9e6 / self.freq)
            return len(buf)

        def writeto_mem(self, addr, memaddr, buf, *, addrsize=8) -> None:
            self.writeto(addr, bytes([memaddr]) + bytes(buf))

        def readfrom(self, addr, nbytes, stop=True) -> bytes:
            blk.ch = -1
            data = world.i2c_read(self.id, addr, nbytes)
            if data is None:
                raise OSError(errno.ENODEV, "ENODEV")
            clock.advance_us((nbytes + 1) * 9e6 / self.freq)
            return data

        def readfrom_into(self, addr, buf, stop=True) -> None:
            buf[:] = self.readfrom(addr, len(buf))

    class PWM:
        def __init__(self, dest, *, freq=None, duty_u16=None, **_):
            self.gpio = _gpio(dest)
            self._freq = freq or 1000
            self._duty = 0
            if duty_u16 is not None:
                self.duty_u16(duty_u16)

        def freq(self, value=None):
            if value is None:
                return self._freq
            self._freq = int(value)
            return None

        def duty_u16(self, value=None):
            if value is None:
                return self._duty
            self._duty = max(0, min(65535, int(value)))
            blk.ch = -1
            world.set_pwm(self.gpio, self._duty)
            return None

        def deinit(self):
            self.duty_u16(0)

    class WDT:
        def __init__(self, id=0, timeout=5000):
            self.timeout_us = int(timeout) * 1000
            self._fed = clock.now_us
            self._armed = True
            clock.on_advance(self._check)

        def feed(self):
            self._fed = clock.now_us

        def _check(self, now_us):
            if self._armed and now_us - self._fed > self.timeout_us:
                self._armed = False  # a reset ends this firmware run
                raise MachineReset("watchdog")

    def reset():
        world.mcu_reset()
        raise MachineReset("hard")

    def soft_reset():
        world.mcu_reset()
        raise MachineReset("soft")

    machine = types.ModuleType("machine")
    for name, obj in dict(Pin=Pin, ADC=ADC, SPI=SPI, I2C=I2C, PWM=PWM, WDT=WDT, reset=reset,
                          soft_reset=soft_reset).items():
        setattr(machine, name, obj)
    machine.freq = lambda hz=None: 125_000_000 if hz is None else None
    machine.unique_id = lambda: b"LBEMU" + (world.seed & 0xFFFFFF).to_bytes(3, "little")
    machine.idle = lambda: clock.advance_us(1)
    machine.lightsleep = machine.deepsleep = lambda ms=0: clock.sleep_ms(ms)
    machine.disable_irq = lambda: 0
    machine.enable_irq = lambda state=0: None

    utime = types.ModuleType("time")
    for name in ("ticks_us", "ticks_ms", "ticks_cpu", "ticks_add", "ticks_diff", "sleep",
                 "sleep_ms", "sleep_us", "time_ns"):
        setattr(utime, name, getattr(clock, name))
    utime.time = lambda: clock.now_us // 1_000_000
    return machine, utime


class _Block:
    """Conversions of one ADC input fetched ahead (:meth:`World.adc_block`): as many as
    the previous run of consecutive reads of one input (the firmware's oversampling),
    so that ``read_u16`` answers a whole run from one world call. Valid while nothing
    else reaches the world (any other machine call) and the clock has not moved since
    (a sleep, a tick read). Conversions fetched but not read still took their time, as
    in the VM's ``machine`` (the ADC runs free, like the RP2040's round-robin FIFO)."""

    __slots__ = ("ch", "codes", "pos", "end", "streak", "want")

    MAX = 64  # as the VM's block

    def __init__(self) -> None:
        self.ch = -1  # the input of the valid block; -1: none
        self.codes: list[int] = []
        self.pos = 0
        self.end = -1  # the clock right after the block
        self.streak = 0  # consecutive reads of the block's input
        self.want = 1  # block length to fetch next

    def fetch(self, world: World, ch: int, new_run: bool) -> int:
        if new_run:
            if self.streak:
                self.want = self.streak
            self.streak = 1
        codes = world.adc_block(ch, min(self.want, self.MAX))
        self.ch = ch
        self.codes = codes
        self.pos = 1
        self.end = world.clock._us
        return codes[0]
