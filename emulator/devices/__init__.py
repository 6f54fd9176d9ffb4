"""Emulated parts, one small module each, modelled at the pin / bus level per datasheet.

Every model is plain CPython with its own seeded randomness, driven by a
:class:`~learnboard.emulator.devices.clock.VirtualClock`; :mod:`learnboard.emulator.world`
wires them to a board description and the shared physics.
"""

from learnboard.emulator.devices.adc import AdcModel
from learnboard.emulator.devices.chains import ShiftChain
from learnboard.emulator.devices.clock import VirtualClock
from learnboard.emulator.devices.dac import PwmRc, SpiDac
from learnboard.emulator.devices.digipot import SpiDigipot, X9cDigipot
from learnboard.emulator.devices.gate import GateCap
from learnboard.emulator.devices.mux import AnalogMux

__all__ = ["AdcModel", "AnalogMux", "GateCap", "PwmRc", "ShiftChain", "SpiDac", "SpiDigipot",
           "VirtualClock", "X9cDigipot"]
