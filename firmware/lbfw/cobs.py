"""Consistent Overhead Byte Stuffing (COBS) into preallocated buffers.

Encoded data never contains 0x00, so 0x00 delimits frames. Blocks are at most 254
data bytes; a final full block gets no trailing 0x01 code (the common convention,
same as the ``cobs`` PyPI package). Both functions work byte by byte without
allocating, so they are safe in an allocation-free loop.
"""


def encode_into(src, n, dst):
    """COBS-encode ``src[0:n]`` into ``dst``; return the encoded length.

    Raises ValueError when ``dst`` is too small (needs ``n + n // 254 + 1`` bytes).
    Few locals on purpose: MicroPython heap-allocates larger call frames.
    """
    if n + n // 254 + 1 > len(dst):
        raise ValueError("cobs: output buffer too small")
    code_at = 0
    out = 1
    i = 0
    while i < n:
        b = src[i]
        i += 1
        if b:
            dst[out] = b
            out += 1
            if out - code_at == 0xFF:
                dst[code_at] = 0xFF
                if i == n:  # a full final block needs no trailing code byte
                    return out
                code_at = out
                out += 1
        else:
            dst[code_at] = out - code_at
            code_at = out
            out += 1
    dst[code_at] = out - code_at
    return out


def decode_into(src, n, dst):
    """Decode COBS ``src[0:n]`` (no delimiter) into ``dst``; return the length or -1.

    -1 means malformed (a zero byte, a block running past the end, or output
    overflowing ``dst``). Never raises for any input.
    """
    cap = len(dst)
    i = 0
    out = 0
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        end = i + code
        if end > n or out + code - 1 > cap:
            return -1
        i += 1
        while i < end:
            dst[out] = src[i]
            out += 1
            i += 1
        if code < 0xFF and i < n:
            if out >= cap:
                return -1
            dst[out] = 0
            out += 1
    return out
