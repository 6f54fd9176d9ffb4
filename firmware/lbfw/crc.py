"""CRC-32 (CRC-32/ISO-HDLC, the zlib/binascii one) for frame checks.

:func:`crc_into` writes the CRC of a buffer's first bytes, little-endian, into another
buffer, so no caller ever holds the CRC as one integer: on a 32-bit board small ints end
at 2^30 and a CRC above that (three in four) would be a heap int, i.e. an allocation per
frame and a ``MemoryError`` under ``micropython.heap_lock()``. Kernels, first that works:

- ``viper``: machine words (:mod:`lbfw.crc_viper`, ports with the native emitter);
- ``binascii``: the port's ``binascii.crc32`` where small ints are wider than 32 bits
  (CPython, 64-bit ports), so its result is never a heap int;
- ``python``: :func:`crc_into_py`, the 32-bit state as two 16-bit halves.
"""

import sys

# Table of the reflected polynomial 0xEDB88320 for one nibble, split in halves.
_TH = (0x0000, 0x1DB7, 0x3B6E, 0x26D9, 0x76DC, 0x6B6B, 0x4DB2, 0x5005,
       0xEDB8, 0xF00F, 0xD6D6, 0xCB61, 0x9B64, 0x86D3, 0xA00A, 0xBDBD)
_TL = (0x0000, 0x1064, 0x20C8, 0x30AC, 0x4190, 0x51F4, 0x6158, 0x713C,
       0x8320, 0x9344, 0xA3E8, 0xB38C, 0xC2B0, 0xD2D4, 0xE278, 0xF21C)


def crc_into_py(data, n, out, pos):
    """Write the CRC-32 of ``data[0:n]`` into ``out[pos:pos + 4]`` (little-endian); pure
    Python, every intermediate below 2^16."""
    th = _TH
    tl = _TL
    hi = 0xFFFF
    lo = 0xFFFF
    for k in range(n):
        lo ^= data[k]
        i = lo & 0xF
        lo = ((lo >> 4) | ((hi & 0xF) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
        i = lo & 0xF
        lo = ((lo >> 4) | ((hi & 0xF) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    out[pos] = lo & 0xFF
    out[pos + 1] = lo >> 8
    out[pos + 2] = hi & 0xFF
    out[pos + 3] = hi >> 8


def _binascii_into(data, n, out, pos):
    c = _crc32(memoryview(data)[0:n])
    out[pos] = c & 0xFF
    out[pos + 1] = (c >> 8) & 0xFF
    out[pos + 2] = (c >> 16) & 0xFF
    out[pos + 3] = (c >> 24) & 0xFF


try:
    from .crc_viper import crc_into
    KERNEL = "viper"
except Exception:  # CPython, or a port without the native emitter
    try:
        from binascii import crc32 as _crc32
    except ImportError:  # small ports: no binascii, or binascii without crc32
        _crc32 = None
    if _crc32 is not None and sys.maxsize >> 32:  # small ints wider than 32 bits
        crc_into = _binascii_into
        KERNEL = "binascii"
    else:
        crc_into = crc_into_py
        KERNEL = "python"
