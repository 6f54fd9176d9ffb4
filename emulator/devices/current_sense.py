"""INA219-style I2C current/power monitor (register level).

Writing one byte sets the register pointer; writing three sets a 16-bit register
(configuration 0x00, calibration 0x05) MSB first. A read returns the pointed register,
MSB first. Registers: 0x01 shunt voltage (signed, 10 µV/LSB, clipped at the PGA's range:
±40/80/160/320 mV), 0x02 bus voltage (bits 15..3 at 4 mV/LSB, bit 1 CNVR, bit 0 OVF;
0–32 V range), 0x03 power and 0x04 current (from the calibration register, as the
datasheet computes them; 0 until it is written). The world supplies the shunt current
and the bus-input volts at read time; a conversion is ready at once (CNVR always set:
its 0.5–68 ms conversion time is not emulated).

What the part adds to the truth, with the datasheet's numbers (INA219, SBOS448):

* a fixed offset per device, referred to the input: normal with the typical value as
  its standard deviation (±10 µV at PGA /1 — one LSB — up to ±40 µV at /8), drawn from
  the seed;
* noise: ``noise_lsb`` standard deviation per conversion, over √samples when the
  configuration averages (SADC 1xxx: 2^n samples);
* the IN- pin's bias current: it sits on the node side of the shunt, so the shunt carries
  it — ``bias_amps`` (20 µA typical) in parallel with the bus input's 320 kΩ
  (:meth:`in_minus_amps`); the world adds it to the node's load (it sets the shunt's drop
  too). The datasheet gives typical values only: the emulator draws each device's within
  ±10 % (one standard deviation), an assumption.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHUNT_LSB = 10e-6  # V
BUS_LSB = 4e-3  # V
BIAS_AMPS = 20e-6  # A, IN- pin input bias current, active mode (typical)
BUS_INPUT_OHMS = 320e3  # ohm, IN- pin bus-input impedance (typical)
OFFSET_TYP = (10e-6, 20e-6, 30e-6, 40e-6)  # V, offset RTI at PGA /1, /2, /4, /8 (typical)
POWER_ON_CONFIG = 0x399F


class CurrentSense:
    """One INA219 at ``address`` with shunt ``shunt`` ohm; ``measure() -> (amps, volts)``:
    the shunt's current (IN- pin's bias included) and the IN- pin's volts."""

    def __init__(self, address: int, shunt: float, measure: Callable[[], tuple[float, float]],
                 noise_lsb: float = 0.5, seed=0):
        self.address = int(address)
        self.shunt = float(shunt)
        self.measure = measure
        self.noise_lsb = float(noise_lsb)
        self.rng = np.random.default_rng(seed)
        dev = np.random.default_rng([*np.atleast_1d(seed).tolist(), self.address])
        z_off, z_bias, z_rin = dev.standard_normal(3)
        self.offset_z = float(z_off)  # offset in units of the PGA's typical offset
        self.bias_amps = BIAS_AMPS * (1.0 + 0.1 * float(z_bias))
        self.bus_input_ohms = BUS_INPUT_OHMS * (1.0 + 0.1 * float(z_rin))
        self.pointer = 0
        self.regs = {0: POWER_ON_CONFIG, 5: 0}  # power-on configuration, calibration

    def in_minus_amps(self, volts: float) -> float:
        """What the IN- pin draws from the node at ``volts``: bias plus bus input."""
        return self.bias_amps + volts / self.bus_input_ohms

    @property
    def pga(self) -> int:
        """The PGA setting 0..3 (/1, /2, /4, /8: ±40·2^pga mV)."""
        return (self.regs.get(0, POWER_ON_CONFIG) >> 11) & 3

    @property
    def samples(self) -> int:
        """Shunt conversions averaged per result (SADC bits 6..3: 1xxx averages 2^xxx)."""
        sadc = (self.regs.get(0, POWER_ON_CONFIG) >> 3) & 0xF
        return 1 << (sadc & 7) if sadc & 8 else 1

    @property
    def offset_volts(self) -> float:
        """This device's input offset at its PGA setting."""
        return self.offset_z * OFFSET_TYP[self.pga]

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0]
        if len(data) >= 3 and data[0] in (0, 5):
            self.regs[data[0]] = (data[1] << 8) | data[2]
            if data[0] == 0 and data[1] & 0x80:  # RST bit
                self.regs = {0: POWER_ON_CONFIG, 5: 0}

    def _shunt_code(self, amps: float) -> int:
        code = (amps * self.shunt + self.offset_volts) / SHUNT_LSB \
            + self.noise_lsb / np.sqrt(self.samples) * self.rng.standard_normal()
        full = 4000 << self.pga
        return int(np.clip(np.rint(code), -full, full))

    def register(self, reg: int) -> int:
        amps, volts = self.measure()
        if reg == 1:
            return self._shunt_code(amps) & 0xFFFF
        if reg == 2:
            code = int(np.clip(np.rint(max(volts, 0.0) / BUS_LSB), 0, 8000))
            return (code << 3) | 0x2
        cal = self.regs.get(5, 0)
        if reg in (3, 4):
            current = self._shunt_code(amps) * cal // 4096
            if reg == 4:
                return current & 0xFFFF
            bus = int(np.rint(max(volts, 0.0) / BUS_LSB))
            return (current * bus // 5000) & 0xFFFF
        return self.regs.get(reg, 0)

    def read(self, n: int) -> bytes:
        v = self.register(self.pointer)
        out = bytes([(v >> 8) & 0xFF, v & 0xFF])
        return (out * ((n + 1) // 2))[:n]
