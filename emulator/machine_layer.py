"""A CPython ``machine`` (and ``time``) module whose calls drive an emulated :class:`World`.

This is what the firmware's hardware layer receives under CPython in the fast in-process
mode: the MicroPython API (``Pin``, ``ADC``, ``SPI``, ``I2C``, ``PWM``, ``WDT``, ``reset``,
``reset_cause``, ``soft_reset``, ``freq``, ``unique_id``, ``idle``, ``lightsleep``) with RP2040 numbering,
and a ``time`` module on the world's virtual clock. ``reset()``, ``soft_reset()`` and an
expired watchdog raise :class:`MachineReset`, which the in-process runner catches to
restart the firmware.

    machine, utime = build(World("gen2-clln", seed=1))
"""

from __future__ import annotations

import errno
import types

from learnboard.emulator.devices.watchdog import MAX_TIMEOUT_MS, PWRON_RESET, WDT_RESET
from learnboard.emulator.world import World

ADC_PIN_BASE = 26  # RP2040: GPIO 26..29 are ADC inputs 0..3, input 4 is the temperature sensor


class MachineReset(Exception):
    """The emulated microcontroller reset (``kind``: ``"hard"``, ``"soft"``, ``"watchdog"``)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def _watchdog_fired() -> None:
    raise MachineReset("watchdog")


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


def build(world: World) -> tuple[types.ModuleType, types.ModuleType]:
    """Return ``(machine, time)`` module objects bound to ``world``."""
    clock = world.clock

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
            world.set_pin(self.id, 1 if x else 0)
            return None

        __call__ = value

        def on(self):
            world.set_pin(self.id, 1)

        def off(self):
            world.set_pin(self.id, 0)

        high, low = on, off

        def toggle(self):
            world.set_pin(self.id, 1 - world.pins.get(self.id, 0))

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
            return world.adc_read_u16(self.channel)

        def read_u16_sum(self, n, shift=0) -> int:
            """Emulator extension: ``sum(read_u16() >> shift for _ in range(n))`` in one
            call (the firmware HAL uses it for oversampling when the port offers it)."""
            return world.adc_sum(self.channel, int(n), int(shift))

    class SPI:
        MSB, LSB = 1, 0
        CONTROLLER = 0

        def __init__(self, id, baudrate=1_000_000, **kw):
            self.id = int(id)
            self.init(baudrate, **kw)

        def init(self, baudrate=None, **kw):
            if baudrate is not None:
                self.baudrate = int(baudrate)

        def deinit(self):
            pass

        def write(self, buf) -> None:
            world.spi_write(self.id, bytes(buf), self.baudrate)

        def read(self, nbytes, write=0) -> bytes:
            # MISO from the world (an SPI ADC; zeros where no part drives it)
            return world.spi_transfer(self.id, bytes([write]) * nbytes, self.baudrate)

        def readinto(self, buf, write=0) -> None:
            buf[:] = self.read(len(buf), write)

        def write_readinto(self, wbuf, rbuf) -> None:
            rbuf[:] = world.spi_transfer(self.id, bytes(wbuf), self.baudrate)

    class I2C:
        def __init__(self, id, *, scl=None, sda=None, freq=400_000, **_):
            self.id = int(id)
            self.freq = int(freq)

        def scan(self) -> list[int]:
            return world.i2c_addresses(self.id)

        def writeto(self, addr, buf, stop=True) -> int:
            if not world.i2c_write(self.id, addr, bytes(buf)):
                raise OSError(errno.ENODEV, "ENODEV")
            clock.advance_us((len(buf) + 1) * 9e6 / self.freq)
            return len(buf)

        def writeto_mem(self, addr, memaddr, buf, *, addrsize=8) -> None:
            self.writeto(addr, bytes([memaddr]) + bytes(buf))

        def readfrom(self, addr, nbytes, stop=True) -> bytes:
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
            world.set_pwm(self.gpio, self._duty)
            return None

        def deinit(self):
            self.duty_u16(0)

    wd = world.watchdog
    if wd.on_expire is None:  # the firmware runs in this thread: leave its clock call
        wd.on_expire = _watchdog_fired

    class WDT:
        """The RP2040 watchdog (:mod:`learnboard.emulator.devices.watchdog`); when it
        runs out the in-process runner restarts the firmware (``MachineReset``)."""

        def __init__(self, id=0, timeout=5000):
            if id != 0:
                raise ValueError(f"WDT({id}) doesn't exist")
            if not 0 <= int(timeout) <= MAX_TIMEOUT_MS:
                raise ValueError(f"timeout exceeds {MAX_TIMEOUT_MS}")
            wd.start(timeout)

        def feed(self):
            wd.feed()

    def reset():
        wd.reboot()  # rp2 reboots through the watchdog: the next boot says WDT_RESET
        world.mcu_reset()
        raise MachineReset("hard")

    def soft_reset():
        world.mcu_reset()
        raise MachineReset("soft")

    seen = [None, None]  # the HAL's mux list (built once at its start) and its gpios

    def adc_scan(mux, rd, settle_us, n, shift, out, kind=None):
        """Emulator extension: the firmware HAL's whole node-read loop in one call
        (:meth:`World.adc_scan`; the VM's machine has the same, ``_lbscan.py``). ``mux``:
        the HAL's per-mux (select pins, enable pin or None, enable level, ADC)."""
        if seen[0] is not mux:
            seen[:] = mux, tuple((tuple(p.id for p in m[0]), None if m[1] is None else m[1].id,
                                  m[2], m[3].channel) for m in mux)
        world.adc_scan(seen[1], rd, settle_us, int(n), int(shift), out, kind)

    machine = types.ModuleType("machine")
    for name, obj in dict(Pin=Pin, ADC=ADC, SPI=SPI, I2C=I2C, PWM=PWM, WDT=WDT, reset=reset,
                          soft_reset=soft_reset, MachineReset=MachineReset,
                          reset_cause=lambda: wd.cause, PWRON_RESET=PWRON_RESET,
                          WDT_RESET=WDT_RESET,
                          adc_scan=adc_scan).items():
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
    # the brief's clock functions, also reachable from ``machine`` for one-object layers
    for name in ("ticks_us", "ticks_ms", "ticks_diff", "ticks_add", "sleep_us", "sleep_ms"):
        setattr(machine, name, getattr(clock, name))
    return machine, utime
