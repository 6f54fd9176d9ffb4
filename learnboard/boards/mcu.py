"""What the validator knows about each supported microcontroller (RP2040 first).

Facts from the RP2040 datasheet: GPIO 0-29; ADC inputs 0-3 on GPIO 26-29 (the Pico
board uses GPIO 29 for VSYS/3 and exposes 26-28); PWM channel of pin ``p`` is slice
``(p >> 1) & 7``, output ``p & 1`` (so GPIO p and p+16 share a PWM output); SPI and
I2C peripherals reach fixed pin sets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Microcontroller:
    name: str
    n_gpio: int
    adc_pins: tuple[int, ...]  # GPIO of ADC input k
    adc_bits: int
    adc_vref: float
    # bus id -> signal -> allowed pins
    spi_pins: dict[int, dict[str, tuple[int, ...]]]
    i2c_pins: dict[int, dict[str, tuple[int, ...]]]

    def pwm_output(self, pin: int) -> tuple[int, str]:
        """(slice, 'A'|'B') driving ``pin``."""
        return (pin >> 1) & 7, "AB"[pin & 1]


RP2040 = Microcontroller(
    name="rp2040",
    n_gpio=30,
    adc_pins=(26, 27, 28, 29),
    adc_bits=12,
    adc_vref=3.3,
    spi_pins={
        0: {"sck": (2, 6, 18, 22), "mosi": (3, 7, 19), "miso": (0, 4, 16, 20)},
        1: {"sck": (10, 14, 26), "mosi": (11, 15, 27), "miso": (8, 12, 28)},
    },
    i2c_pins={
        0: {"sda": (0, 4, 8, 12, 16, 20, 28), "scl": (1, 5, 9, 13, 17, 21)},
        1: {"sda": (2, 6, 10, 14, 18, 26), "scl": (3, 7, 11, 15, 19, 27)},
    },
)

MICROCONTROLLERS: dict[str, Microcontroller] = {"rp2040": RP2040}
