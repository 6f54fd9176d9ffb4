"""The board's voltage outputs: DAC channels and RC-filtered PWM pins.

:class:`Outputs` (a part of ``World``) owns the PWM filters of the microcontroller's
pins and reads the volts of any output line (a PWM pin or a DAC channel) as its settling
law gives them at a time; the DACs themselves are written over SPI or I2C (``wiring``).
"""

from __future__ import annotations

from functools import partial

from learnboard.emulator.devices import PwmRc

from learnboard.boards import Line


class Outputs:
    """PWM and DAC outputs of ``World``."""

    def _build_inputs(self) -> None:
        """A PWM filter on every pin that drives a port directly (DACs drive the rest)."""
        pwm = self.board.pwm
        for port in self.board.inputs + self.board.outputs:
            for line in port.drive + port.drive_b:
                if line is not None and not line.device:
                    self.pwms[line.index] = PwmRc(pwm.bits, pwm.vref, pwm.gain, pwm.settle_us,
                                                  pwm.freq)

    def set_pwm(self, gpio: int, duty_u16: int) -> None:
        """PWM duty ``duty_u16`` (of 65535) on ``gpio``: its RC filter starts settling."""
        pwm = self.pwms.get(gpio)
        if pwm is None:
            p = self.board.pwm
            pwm = self.pwms[gpio] = PwmRc(p.bits, p.vref, p.gain, p.settle_us, p.freq) if p \
                else PwmRc()
        pwm.set_duty_u16(duty_u16, self.clock.now_us)
        self._cache.actuated(self.clock.now_us, self._out_settle_us)

    def _line_volts(self, line: Line, now: int) -> float:
        """Volts of voltage output ``line`` (a PWM pin or a DAC channel) at ``now``."""
        if not line.device:
            return self.pwms[line.index].output(now)
        return self.dacs[line.device].output(line.index, now)

    def _line_getter(self, line: Line):
        """``volts_at(now_us)`` of voltage output ``line`` (:meth:`_line_volts` bound)."""
        if not line.device:
            return partial(self.pwms[line.index]._out.value, 0)
        return partial(self.dacs[line.device]._out.value, line.index)

    def _outputs_off(self, now: int) -> None:
        """The microcontroller resets: PWM stops (the filters discharge)."""
        for pwm in self.pwms.values():
            pwm.set_duty_u16(0, now)

    def _dacs_power_cycle(self, now: int) -> None:
        """Board power off and on: the DACs come back at 0 V."""
        for dac in self.dacs.values():
            for ch in range(dac.channels):
                dac.codes[ch] = 0
                dac._out.set(ch, 0.0, now)
