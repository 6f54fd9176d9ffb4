"""A CPython ``machine`` (and ``time``) module whose calls drive an emulated :class:`World`.

This is what the firmware's hardware layer receives under CPython in the fast in-process
mode: the MicroPython API (``Pin``, ``ADC``, ``SPI``, ``I2C``, ``PWM``, ``WDT``, ``reset``,
``reset_cause``, ``soft_reset``, ``freq``, ``unique_id``, ``idle``, ``lightsleep``) with RP2040 numbering,
and a ``time`` module on the world's virtual clock — only names MicroPython's RP2040 port
has. Every call charges the cost model's time (:mod:`learnboard.emulator.cost_model`),
and a run of ``ADC.read_u16`` calls on one input is answered from one block of
conversions (:meth:`World.adc_block`). ``reset()``, ``soft_reset()`` and an expired
watchdog raise :class:`MachineReset`, which the in-process runner catches to restart the
firmware.

    machine, utime = build(World("gen2-clln", seed=1))
"""

from __future__ import annotations

import errno
import types
from itertools import chain

from learnboard.emulator.cost_model import CostModel, cost_model
from learnboard.emulator.devices.watchdog import MAX_TIMEOUT_MS, NEVER, PWRON_RESET, WDT_RESET
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


def build(world: World, *, blocks: bool = True,
          cost: str | CostModel | None = None) -> tuple[types.ModuleType, types.ModuleType]:
    """Return ``(machine, time)`` module objects bound to ``world``. ``blocks=False``
    converts one sample per ``ADC.read_u16`` call instead of answering runs of reads
    from blocks (the reference the tests compare the blocks with). ``cost``: the cost
    model that charges the firmware's calls to the virtual clock (``rp2040`` by
    default, ``zero``; :mod:`learnboard.emulator.cost_model`)."""
    clock = world.clock
    model = cost_model(cost)
    call = model.call_us
    blk = _ReadAhead.of(world)  # the ADC conversions fetched ahead
    blk.period = model.adc_period_us
    advance = clock.advance_us
    owed = _Owed()  # call costs not yet on the clock: paid before the next effect

    advance_int = clock.advance_int

    def pay() -> None:
        o = owed.us
        if o:
            owed.us = 0
            advance_int(o)

    def charge() -> None:
        owed.us += call
        pay()
    pins = world.pins

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
            o = owed.us + call
            if blk.adc is not None:  # a call between reads: the run of reads ends
                blk.end_run()
            g = self.id
            if x is None:
                owed.us = o
                return pins.get(g, 0)
            v = 1 if x else 0
            if pins.get(g) == v:  # the world ignores a write that keeps the level
                owed.us = o
                return None
            owed.us = 0  # pay the calls owed, then the write acts
            advance_int(o)
            world.pin_changed(g, v)
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
            # a run of reads of this input is answered from a block (see _ReadAhead):
            # the instance's read_u16 is then the block's iterator, this the way back
            o = owed.us  # pay(), inline: the first read of every node
            if o:
                owed.us = 0
                advance_int(o)
            if not blocks:
                code = world.adc_read_u16(self.channel)
                advance(call)  # the call's return, after its conversion (as in a block)
                return code
            return blk.start(self)

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
            blk.end_run()
            charge()
            world.spi_write(self.id, bytes(buf), self.baudrate)

        def read(self, nbytes, write=0) -> bytes:
            # MISO from the world (an SPI ADC; zeros where no part drives it)
            blk.end_run()
            charge()
            return world.spi_transfer(self.id, bytes([write]) * nbytes, self.baudrate)

        def readinto(self, buf, write=0) -> None:
            buf[:] = self.read(len(buf), write)

        def write_readinto(self, wbuf, rbuf) -> None:
            blk.end_run()
            charge()
            rbuf[:] = world.spi_transfer(self.id, bytes(wbuf), self.baudrate)

    class I2C:
        def __init__(self, id, *, scl=None, sda=None, freq=400_000, **_):
            self.id = int(id)
            self.freq = int(freq)

        def scan(self) -> list[int]:
            charge()
            return world.i2c_addresses(self.id)

        def writeto(self, addr, buf, stop=True) -> int:
            blk.end_run()
            charge()
            if not world.i2c_write(self.id, addr, bytes(buf)):
                raise OSError(errno.ENODEV, "ENODEV")
            clock.advance_us((len(buf) + 1) * 9e6 / self.freq)
            return len(buf)

        def writeto_mem(self, addr, memaddr, buf, *, addrsize=8) -> None:
            self.writeto(addr, bytes([memaddr]) + bytes(buf))

        def readfrom(self, addr, nbytes, stop=True) -> bytes:
            blk.end_run()
            charge()
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
            charge()
            if value is None:
                return self._freq
            self._freq = int(value)
            return None

        def duty_u16(self, value=None):
            charge()
            if value is None:
                return self._duty
            self._duty = max(0, min(65535, int(value)))
            blk.end_run()
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
            charge()  # a call like any other: its cost is on the clock before the feed
            wd.feed()

    def reset():
        wd.reboot()  # rp2 reboots through the watchdog: the next boot says WDT_RESET
        world.mcu_reset()
        raise MachineReset("hard")

    def soft_reset():
        world.mcu_reset()
        raise MachineReset("soft")

    machine = types.ModuleType("machine")
    for name, obj in dict(Pin=Pin, ADC=ADC, SPI=SPI, I2C=I2C, PWM=PWM, WDT=WDT, reset=reset,
                          soft_reset=soft_reset, reset_cause=lambda: wd.cause,
                          PWRON_RESET=PWRON_RESET, WDT_RESET=WDT_RESET).items():
        setattr(machine, name, obj)
    machine.freq = lambda hz=None: 125_000_000 if hz is None else None
    machine.unique_id = lambda: world.uid
    machine.idle = lambda: clock.advance_us(1)
    machine.lightsleep = machine.deepsleep = lambda ms=0: clock.sleep_ms(ms)
    machine.disable_irq = lambda: 0
    machine.enable_irq = lambda state=0: None

    utime = types.ModuleType("time")
    for name in ("ticks_add", "ticks_diff", "time_ns"):
        setattr(utime, name, getattr(clock, name))
    tick_extra = max(0, call - clock.tick_cost_us)  # a tick read's own cost is the clock's

    def ticks_us():
        owed.us += tick_extra
        pay()
        return clock.ticks_us()

    def ticks_ms():
        owed.us += tick_extra
        pay()
        return clock.ticks_ms()

    def sleep_us(us):
        o = owed.us + call  # the call, then the sleep: one advance
        owed.us = 0
        us = int(us)
        advance_int(o + us if us > 0 else o)

    def sleep_ms(ms):
        sleep_us(max(0, ms) * 1000)

    def sleep(s):
        sleep_us(max(0, s) * 1e6)

    for f in (ticks_us, ticks_ms, sleep_us, sleep_ms, sleep):
        setattr(utime, f.__name__, f)
    utime.ticks_cpu = ticks_us
    utime.time = lambda: clock.now_us // 1_000_000
    return machine, utime


class _Owed:
    __slots__ = ("us",)

    def __init__(self) -> None:
        self.us = 0


class _ReadAhead:
    """Conversions of one ADC input fetched ahead (:meth:`World.adc_block`): as many as
    the previous run of consecutive reads of one input (the firmware's oversampling),
    so that a whole run is one world call. While the block lasts, the ``ADC`` object's
    ``read_u16`` is the block's iterator (after it, :meth:`more` fetches the next
    block of the run); anything else that reaches the world (another machine call that
    changes it) or moves the clock (a sleep, a tick read) ends the run. Conversions
    fetched but not read still took their time, as in the VM's ``machine`` (the ADC
    runs free, like the RP2040's round-robin FIFO). One per world (it watches the
    world's clock), shared by the ``machine`` modules built on it."""

    __slots__ = ("world", "adc", "it", "len", "runs", "want", "period", "tail")

    MAX = 64  # as the VM's block

    def __init__(self, world: World) -> None:
        self.world = world
        self.adc = None  # the ADC object answering from a block; None: no run
        self.it = None  # the block's iterator (its length hint: the reads left)
        self.len = 0
        self.runs = 0  # reads of the run in the blocks before this one
        self.want = 1  # block length to fetch next (at most MAX)
        self.period = 2  # µs from one read to the next (the cost model's)
        self.tail = iter(self.more, None)  # after a block: the run's next block
        world.clock.on_advance(self._moved, self._moves_from)

    @classmethod
    def of(cls, world: World) -> _ReadAhead:
        ra = getattr(world, "_read_ahead", None)
        if ra is None:
            ra = world._read_ahead = cls(world)
        return ra

    def _moves_from(self) -> int:
        """The clock's ``quiet_until``: an advance ends a run of reads, if one is on."""
        return 0 if self.adc is not None else NEVER

    def _moved(self, _now: int) -> None:
        if self.adc is not None:
            self.end_run()

    def end_run(self) -> None:
        """The run of reads ended: remember its length for the next block."""
        a = self.adc
        if a is not None:
            self.adc = None
            del a.read_u16
            self.want = min(self.MAX, max(1, self.runs + self.len - self.it.__length_hint__()))

    def start(self, adc) -> int:
        """The first read of a run on ``adc`` (:meth:`_fetch`, inline: once per node read)."""
        if self.adc is not None:
            self.end_run()
        self.runs = 0
        codes = self.world.adc_block(adc.channel, self.want, self.period)
        self.len = len(codes)
        self.it = it = iter(codes)
        adc.read_u16 = chain(it, self.tail).__next__
        self.adc = adc
        self.world.clock.wake()  # the next advance ends the run
        return next(it)

    def more(self) -> int:
        """A read beyond the block: the run goes on with the next block."""
        adc = self.adc
        self.runs += self.len
        return self._fetch(adc)

    def _fetch(self, adc) -> int:
        world = self.world
        self.adc = None  # the block's own clock advance ends no run
        codes = world.adc_block(adc.channel, self.want, self.period)
        self.len = len(codes)
        self.it = it = iter(codes)
        adc.read_u16 = chain(it, self.tail).__next__
        self.adc = adc
        self.world.clock.wake()  # the next advance ends the run
        return next(it)
