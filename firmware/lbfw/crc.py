"""CRC-32 (CRC-32/ISO-HDLC, the zlib/binascii one) for frame checks.

``binascii.crc32`` is used when the port has it; small builds lack it, so a
nibble-table fallback is kept. The fallback holds the 32-bit state as two 16-bit
halves so every intermediate stays a small int on 32-bit boards (no heap ints).
"""

# Table of the reflected polynomial 0xEDB88320 for one nibble, split in halves.
_TH = (0x0000, 0x1DB7, 0x3B6E, 0x26D9, 0x76DC, 0x6B6B, 0x4DB2, 0x5005,
       0xEDB8, 0xF00F, 0xD6D6, 0xCB61, 0x9B64, 0x86D3, 0xA00A, 0xBDBD)
_TL = (0x0000, 0x1064, 0x20C8, 0x30AC, 0x4190, 0x51F4, 0x6158, 0x713C,
       0x8320, 0x9344, 0xA3E8, 0xB38C, 0xC2B0, 0xD2D4, 0xE278, 0xF21C)


def crc32_py(data, crc=0):
    """CRC-32 of ``data`` (any bytes-like) continuing from ``crc``; pure Python."""
    th = _TH
    tl = _TL
    hi = ((crc >> 16) & 0xFFFF) ^ 0xFFFF
    lo = (crc & 0xFFFF) ^ 0xFFFF
    for b in data:
        lo ^= b
        i = lo & 0xF
        lo = ((lo >> 4) | ((hi & 0xF) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
        i = lo & 0xF
        lo = ((lo >> 4) | ((hi & 0xF) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)


try:
    from binascii import crc32 as _native
except ImportError:  # small ports: no binascii, or binascii without crc32
    _native = None

crc32 = _native if _native is not None else crc32_py
"""CRC-32 of a bytes-like object: the native one when present, else :func:`crc32_py`."""
NATIVE = _native is not None
