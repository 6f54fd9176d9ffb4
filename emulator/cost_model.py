"""What the firmware's own Python costs on the board, charged to the virtual clock.

The emulated ``machine`` and ``time`` modules advance the virtual clock by a fixed
amount for every call the firmware makes into them (a pin write or read, a PWM duty,
an SPI or I2C transfer's start, an ADC read, a tick read, a sleep's start) and for every
pass of the firmware's main loop (each poll of its input), on top of what the parts
themselves take (bus bytes at the baud rate, 2 µs per conversion, the sleep asked for).
The costs are whole microseconds and depend only on the calls made, so a seeded run is
as reproducible as without them (the VM has no ``sys.settrace``, and CPU time read from
outside would differ from run to run).

``rp2040`` is calibrated from published MicroPython timings:

* a ``machine`` method call from Python on an RP2040 at its default 125 MHz takes about
  3 µs: ``t0 = time.ticks_us(); pwm.duty_u16(32000); t1 = time.ticks_us()`` measures
  5–10 µs, steadily ~6 µs, for the duty call plus one tick read (MicroPython 1.18 on a
  Raspberry Pi Pico, https://github.com/micropython/micropython/issues/8424, 2022);
* a pass of a tight MicroPython loop that makes one C call (``while millis() < end:
  count += 1``) takes 3.46 µs on a pyboard (STM32F405, 168 MHz: 2,890,723 passes in 10 s,
  https://github.com/micropython/micropython/wiki/Performance); at 125 MHz that is 4.65 µs, taken as 5 µs per pass
  of the firmware's main loop — a lower bound: the Cortex-M0+ does less per clock than
  the pyboard's Cortex-M4, and a real pass does more than one call.

An ADC read's interpreter time is charged after its conversion (the conversion starts
as the call's C code runs): back-to-back reads are ``2 + call_us`` µs apart. ``zero``
charges nothing (the clock moves only for the parts, as before the model existed).
"""

from __future__ import annotations

from dataclasses import dataclass

from learnboard.errors import InputError

ADC_CONVERSION_US = 2  # RP2040 ADC: 96 cycles of its 48 MHz clock (500 kS/s)

HOST_TURNAROUND_US = 1000
"""Board time from the firmware's going idle (a reply, an event sent) to a prompt host's
next frame: one USB full-speed frame, the interval at which a CDC board's host sends.
Host time does not reach the board's clock: a seeded session is the same run however
fast or busy the host is."""
HOST_SILENT_S = 2.0
"""Real seconds a host may take to answer before its silence is board time too (then
the watchdog, the keeping of leaking gates and the park on host silence see all of it)."""


def host_env() -> str:
    """The setting the VM's ``machine`` reads (``LB_HOST``): ``turnaround_us,silent_us``."""
    return f"{HOST_TURNAROUND_US},{int(HOST_SILENT_S * 1e6)}"


@dataclass(frozen=True)
class CostModel:
    """Virtual µs charged per firmware call into ``machine``/``time`` and per main-loop
    pass (see the module docstring for the basis)."""

    name: str
    call_us: int
    pass_us: int

    @property
    def adc_period_us(self) -> int:
        """µs from one ``ADC.read_u16`` to the next in a tight loop."""
        return ADC_CONVERSION_US + self.call_us

    def env(self) -> str:
        """The setting the VM's ``machine`` reads (``LB_COST``): ``call,pass``."""
        return f"{self.call_us},{self.pass_us}"


MODELS = {
    "rp2040": CostModel("rp2040", call_us=3, pass_us=5),
    "zero": CostModel("zero", call_us=0, pass_us=0),
}
DEFAULT = "rp2040"


def cost_model(name: str | CostModel | None = None) -> CostModel:
    """The model named ``name`` (``rp2040``, ``zero``; None: the default)."""
    if isinstance(name, CostModel):
        return name
    key = DEFAULT if name is None else str(name).lower()
    model = MODELS.get(key)
    if model is None:
        raise InputError(f"unknown cost model {name!r}; use one of {', '.join(MODELS)}",
                         field="cost_model")
    return model
