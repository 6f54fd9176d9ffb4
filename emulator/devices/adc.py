"""SAR ADC model: resolution, reference, gain/offset error, noise, INL/DNL, seeded.

The transfer is built from code widths (in LSB): width 1 is ideal. The RP2040's
erratum E11 makes the codes 512, 1536, 2560 and 3584 much wider than the rest; the
widths of the other codes of each 1024-code segment shrink to keep the full scale, so
the INL is a sawtooth with steps at the spikes (the shape of the datasheet's plots).
Noise is Gaussian at the input, in LSB rms, fresh for every sample. The normal deviates
are drawn from the seeded stream in blocks and handed out one by one (numpy's stream is
the same whether drawn singly or in blocks, so a seed gives the same samples either way).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

E11_CODES = (512, 1536, 2560, 3584)
_NOISE_BLOCK = 4096


class AdcModel:
    """One converter shared by all its inputs.

    Args:
        bits: resolution (12 on the RP2040).
        vref: input volts at full scale.
        gain_error: relative gain error (0.01 = reads 1 % high).
        offset_lsb: offset in LSB.
        noise_lsb: input-referred Gaussian noise, LSB rms (≈ 1 on the RP2040).
        spikes: codes with excess width (E11; empty for an ideal part).
        spike_lsb: excess width of each spike code, LSB (an assumption of the order of
            the RP2040 datasheet's DNL figure).
        seed: noise stream seed.
    """

    def __init__(self, bits: int = 12, vref: float = 3.3, *, gain_error: float = 0.0,
                 offset_lsb: float = 0.0, noise_lsb: float = 1.0,
                 spikes: tuple[int, ...] = E11_CODES, spike_lsb: float = 8.0,
                 seed: int | None = 0):
        self.bits = int(bits)
        self.vref = float(vref)
        self.gain_error = float(gain_error)
        self.offset_lsb = float(offset_lsb)
        self.noise_lsb = float(noise_lsb)
        self.rng = np.random.default_rng(seed)
        self._za = np.zeros(0)  # the drawn block of normal deviates
        self._z: list[float] | None = []  # the same as Python floats, made when needed
        self._zi = 0  # the next unused one
        n = 1 << self.bits
        widths = np.ones(n)
        spikes = tuple(s for s in spikes if 0 < s < n - 1)
        if spikes:
            seg = n // len(spikes)
            for s in spikes:
                lo = (s // seg) * seg
                others = np.r_[lo:s, s + 1:lo + seg]
                widths[s] += spike_lsb
                widths[others] -= spike_lsb / others.size
        # transition k (from code k-1 to k) sits at the summed widths of codes 0..k-1,
        # measured from the ideal half-LSB first transition
        self.widths = widths
        self.transitions = 0.5 + np.cumsum(widths[:-1]) - widths[0]
        self._t_list = self.transitions.tolist()  # scalar path without numpy overhead
        self._lsb = self.vref / (1 << self.bits)
        self._g1 = 1.0 + self.gain_error

    @property
    def lsb_volts(self) -> float:
        return self.vref / (1 << self.bits)

    def dnl(self) -> np.ndarray:
        """Differential non-linearity per code (LSB), end codes excluded (set to 0)."""
        d = self.widths - 1.0
        d[0] = d[-1] = 0.0
        return d

    def convert(self, volts, n: int | None = None, noise_scale: float = 1.0):
        """Codes for the input ``volts`` (scalar or array); ``n`` samples of a scalar input."""
        v = np.asarray(volts, dtype=float)
        if n is not None:
            v = np.full(int(n), float(v))
        x = v / self.lsb_volts * (1.0 + self.gain_error) + self.offset_lsb
        if self.noise_lsb and noise_scale:
            x = x + self.normals(x.size).reshape(x.shape) * self.noise_lsb * noise_scale
        codes = np.searchsorted(self.transitions, x, side="right")
        return codes if codes.ndim else int(codes)

    def normals(self, n: int) -> np.ndarray:
        """The next ``n`` standard normal deviates of the noise stream."""
        out = self.ahead(n).copy()
        self._zi += n
        return out

    def take(self, n: int) -> list[float]:
        """The next ``n`` standard normal deviates as Python floats (the same stream)."""
        z, i = self._floats(), self._zi
        if i + n <= len(z):
            self._zi = i + n
            return z[i:i + n]
        out = z[i:]
        self._block(self.rng.standard_normal(max(_NOISE_BLOCK, n - len(out))))
        self._zi = n - len(out)
        return out + self._floats()[:self._zi]

    def _block(self, za: np.ndarray) -> None:
        self._za = za
        self._z = None  # the vector users (ahead) never need the floats

    def _floats(self) -> list[float]:
        z = self._z
        if z is None:
            z = self._z = self._za.tolist()
        return z

    def ahead(self, n: int) -> np.ndarray:
        """The next ``n`` standard normal deviates without using them up (the same as
        :meth:`take` would give; :meth:`skip` uses them)."""
        short = self._zi + n - len(self._za)
        if short > 0:
            self._block(np.concatenate([self._za[self._zi:],
                                        self.rng.standard_normal(max(_NOISE_BLOCK, short))]))
            self._zi = 0
        return self._za[self._zi:self._zi + n]

    def skip(self, n: int) -> None:
        """Use up ``n`` deviates that :meth:`ahead` gave."""
        self._zi += n

    def code_sum(self, volts: float, n: int, noise_scale: float = 1.0) -> int:
        """Sum of the raw codes of ``n`` conversions of a steady ``volts`` (each with its
        own noise; exactly ``n`` calls of :meth:`code`)."""
        x = volts / self._lsb * self._g1 + self.offset_lsb
        t = self._t_list
        if not (self.noise_lsb and noise_scale):
            return n * bisect_right(t, x)
        nl = self.noise_lsb
        return sum([bisect_right(t, x + z * nl * noise_scale) for z in self.take(n)])

    def code(self, volts: float, noise_scale: float = 1.0) -> int:
        """One conversion of ``volts`` (the raw ``bits``-bit code)."""
        x = volts / self._lsb * self._g1 + self.offset_lsb
        if self.noise_lsb and noise_scale:
            i = self._zi
            if i >= len(self._za):
                self._block(self.rng.standard_normal(_NOISE_BLOCK))
                i = 0
            self._zi = i + 1
            x += self._floats()[i] * self.noise_lsb * noise_scale
        return bisect_right(self._t_list, x)

    def read_u16(self, volts: float, noise_scale: float = 1.0) -> int:
        """One sample scaled to 16 bits as MicroPython's ``ADC.read_u16`` does (bits replicated)."""
        code = self.code(volts, noise_scale)
        shift = 16 - self.bits
        return ((code << shift) | (code >> (self.bits - shift))) & 0xFFFF if shift > 0 else code
