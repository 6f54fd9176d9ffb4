# ruff: noqa: F821  (ptr8/ptr32/uint are viper built-ins)
"""``@micropython.viper`` CRC-32 kernel for :mod:`lbfw.crc` (optional; same results).

The CRC lives in a machine word and leaves as four bytes, so no Python int above 2^8 is
made. Import fails under CPython and on ports without the native emitter; :mod:`lbfw.crc`
then falls back. ``mpy-cross`` needs ``-march`` for this file (``armv6m`` for the RP2040).
"""

import micropython


@micropython.viper
def _fill(tab: ptr32):
    # Table of the reflected polynomial 0xEDB88320, one entry per nibble (64 bytes: the
    # heap is the board's scarcest resource). Built from 16-bit halves: a 32-bit literal
    # would be a heap int on a 32-bit port.
    poly = (uint(0xEDB8) << 16) | uint(0x8320)
    for i in range(16):
        c = uint(i)
        for _ in range(4):
            if c & 1:
                c = (c >> 1) ^ poly
            else:
                c = c >> 1
        tab[i] = c


_TABLE = bytearray(64)
_fill(_TABLE)


@micropython.viper
def _crc(tab: ptr32, data: ptr8, n: int, out: ptr8, pos: int):
    ones = (uint(0xFFFF) << 16) | uint(0xFFFF)
    c = ones
    for k in range(n):
        c = c ^ uint(data[k])
        c = uint(tab[int(c & 0xF)]) ^ (c >> 4)
        c = uint(tab[int(c & 0xF)]) ^ (c >> 4)
    c = c ^ ones
    out[pos] = c & 0xFF
    out[pos + 1] = (c >> 8) & 0xFF
    out[pos + 2] = (c >> 16) & 0xFF
    out[pos + 3] = (c >> 24) & 0xFF


def crc_into(data, n, out, pos):
    """Write the CRC-32 of ``data[0:n]`` into ``out[pos:pos + 4]`` (little-endian)."""
    _crc(_TABLE, data, n, out, pos)
