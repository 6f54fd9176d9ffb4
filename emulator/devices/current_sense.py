"""INA219-style I2C current/power monitor (register level).

Writing one byte sets the register pointer; writing three sets a 16-bit register
(configuration 0x00, calibration 0x05) MSB first. A read returns the pointed register,
MSB first. Registers: 0x01 shunt voltage (signed, 10 µV/LSB, ±320 mV), 0x02 bus voltage
(bits 15..3 at 4 mV/LSB, bit 1 CNVR, bit 0 OVF; 0–32 V range), 0x03 power and 0x04
current (from the calibration register, as the datasheet computes them; 0 until it is
written). The world supplies the shunt current and the bus-input volts at read time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class CurrentSense:
    """One INA219 at ``address`` with shunt ``shunt`` ohm; ``measure() -> (amps, volts)``."""

    def __init__(self, address: int, shunt: float, measure: Callable[[], tuple[float, float]],
                 noise_lsb: float = 0.5, seed=0):
        self.address = int(address)
        self.shunt = float(shunt)
        self.measure = measure
        self.noise_lsb = float(noise_lsb)
        self.rng = np.random.default_rng(seed)
        self.pointer = 0
        self.regs = {0: 0x399F, 5: 0}  # power-on configuration, calibration

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0]
        if len(data) >= 3 and data[0] in (0, 5):
            self.regs[data[0]] = (data[1] << 8) | data[2]
            if data[0] == 0 and data[1] & 0x80:  # RST bit
                self.regs = {0: 0x399F, 5: 0}

    def _shunt_code(self, amps: float) -> int:
        code = amps * self.shunt / 10e-6 + self.noise_lsb * self.rng.standard_normal()
        return int(np.clip(np.rint(code), -32000, 32000))

    def register(self, reg: int) -> int:
        amps, volts = self.measure()
        if reg == 1:
            return self._shunt_code(amps) & 0xFFFF
        if reg == 2:
            code = int(np.clip(np.rint(max(volts, 0.0) / 4e-3), 0, 8000))
            return (code << 3) | 0x2
        cal = self.regs.get(5, 0)
        if reg in (3, 4):
            current = self._shunt_code(amps) * cal // 4096
            if reg == 4:
                return current & 0xFFFF
            bus = int(np.rint(max(volts, 0.0) / 4e-3))
            return (current * bus // 5000) & 0xFFFF
        return self.regs.get(reg, 0)

    def read(self, n: int) -> bytes:
        v = self.register(self.pointer)
        out = bytes([(v >> 8) & 0xFF, v & 0xFF])
        return (out * ((n + 1) // 2))[:n]
