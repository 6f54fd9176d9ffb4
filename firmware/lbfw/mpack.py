"""A small msgpack encoder/decoder for MicroPython (which has no msgpack).

Wire format follows the msgpack spec with the smallest encoding for every value,
byte-identical to the ``msgpack`` Python library with ``use_bin_type=True`` and
``use_single_float=True``: floats go out as float32 (what most boards compute in);
float32 and float64 are both accepted. Supported: None, bool, int (64-bit range),
float, str, bytes/bytearray/memoryview (bin), list/tuple (array), dict (map).
Extension types are refused.

MicroPython dicts do not keep insertion order, so a map's key order is unspecified;
pack an OrderedDict where the order matters (test vectors). Encoding writes into a caller-owned bytearray and raises ValueError when the value
does not fit. Decoding reads a slice of a buffer and raises ValueError on anything
malformed; since every element takes at least one byte, what it builds is bounded
by the input length, and nesting is bounded by ``MAX_DEPTH``.
"""

from struct import pack_into as _pk
from struct import unpack_from as _uk

try:
    from array import array as _ArrayType
except ImportError:
    _ArrayType = None

MAX_DEPTH = 8


# MicroPython puts a call's frame on the heap when its locals plus value stack exceed
# 11 slots, so the encoder is split into small functions that each stay under that
# (a telemetry frame then allocates little). Keep it that way when editing.

_F32_MAX = 3.4028234663852886e38
_F32_MIN = -3.4028234663852886e38
_NIL = b"\xc0"
_TRUE = b"\xc3"
_FALSE = b"\xc2"
_INF = float("inf")
_NINF = float("-inf")


def _full():
    raise ValueError("msgpack: value does not fit the frame")


def _put(buf, pos, end, code, v, k):
    # Type byte ``code`` then ``v`` as k big-endian bytes (k = 0, 1, 2 or 4).
    if pos + 1 + k > end:
        _full()
    buf[pos] = code
    end = pos + 1 + k
    while k:
        buf[pos + k] = v & 0xFF
        v >>= 8
        k -= 1
    return end


def _put8(buf, pos, end, code, fmt, v):
    if pos + 9 > end:
        _full()
    buf[pos] = code
    _pk(fmt, buf, pos + 1, v)
    return pos + 9


def pack_raw(buf, pos, data, end):
    """Copy already-encoded msgpack bytes ``data`` into ``buf``; return the new end."""
    k = len(data)
    if pos + k > end:
        _full()
    buf[pos:pos + k] = data
    return pos + k


def pack_int(buf, pos, v, end):
    """Encode an int in its smallest form; return the new end."""
    if v >= 0:
        if v < 0x80:
            return _put(buf, pos, end, v, 0, 0)
        if v < 0x100:
            return _put(buf, pos, end, 0xCC, v, 1)
        if v < 0x10000:
            return _put(buf, pos, end, 0xCD, v, 2)
        if v < 0x100000000:
            return _put(buf, pos, end, 0xCE, v, 4)
        if not (v >> 64):
            return _put8(buf, pos, end, 0xCF, ">Q", v)
        raise ValueError("msgpack: int out of range")
    if v >= -32:
        return _put(buf, pos, end, v & 0xFF, 0, 0)
    if v >= -0x80:
        return _put(buf, pos, end, 0xD0, v, 1)
    if v >= -0x8000:
        return _put(buf, pos, end, 0xD1, v, 2)
    if v >= -0x80000000:
        return _put(buf, pos, end, 0xD2, v, 4)
    if (v >> 63) == -1:
        return _put8(buf, pos, end, 0xD3, ">q", v)
    raise ValueError("msgpack: int out of range")


def pack_float(buf, pos, v, end):
    """Encode a float as float32 (beyond its range: +-inf, as boards do); return the new end."""
    if pos + 5 > end:
        _full()
    if v > _F32_MAX:
        v = _INF
    elif v < _F32_MIN:
        v = _NINF
    buf[pos] = 0xCA
    _pk(">f", buf, pos + 1, v)
    return pos + 5


def array_header(buf, pos, n, end):
    """Encode the header of an n-element array; the caller then packs n values."""
    if n < 16:
        return _put(buf, pos, end, 0x90 | n, 0, 0)
    return _put(buf, pos, end, 0xDC, n, 2) if n < 0x10000 else _put(buf, pos, end, 0xDD, n, 4)


def map_header(buf, pos, n, end):
    """Encode the header of an n-pair map; the caller then packs n keys and values."""
    if n < 16:
        return _put(buf, pos, end, 0x80 | n, 0, 0)
    return _put(buf, pos, end, 0xDE, n, 2) if n < 0x10000 else _put(buf, pos, end, 0xDF, n, 4)


def pack_value(buf, pos, obj, end):
    """Encode ``obj``; numbers take a short path that allocates nothing."""
    if type(obj) is int:
        return pack_int(buf, pos, obj, end)
    if type(obj) is float:
        return pack_float(buf, pos, obj, end)
    return pack_into(buf, pos, obj, end, 0)


def pack_numbers(buf, pos, seq, end):
    """Encode a flat sequence (list, tuple, array) as an array without allocating."""
    pos = array_header(buf, pos, len(seq), end)
    i = 0
    while i < len(seq):
        pos = pack_value(buf, pos, seq[i], end)
        i += 1
    return pos


def _pack_bytes(buf, pos, data, end, text):
    n = len(data)
    if text and n < 32:
        pos = _put(buf, pos, end, 0xA0 | n, 0, 0)
    elif n < 0x100:
        pos = _put(buf, pos, end, 0xD9 if text else 0xC4, n, 1)
    elif n < 0x10000:
        pos = _put(buf, pos, end, 0xDA if text else 0xC5, n, 2)
    else:
        pos = _put(buf, pos, end, 0xDB if text else 0xC6, n, 4)
    return pack_raw(buf, pos, data, end)


def _pack_seq(buf, pos, obj, end, depth):
    pos = array_header(buf, pos, len(obj), end)
    for item in obj:
        pos = pack_into(buf, pos, item, end, depth)
    return pos


def _pack_map(buf, pos, obj, end, depth):
    pos = map_header(buf, pos, len(obj), end)
    for key in obj:
        pos = pack_into(buf, pos, key, end, depth)
        pos = pack_into(buf, pos, obj[key], end, depth)
    return pos


def pack_into(buf, pos, obj, end=None, depth=0):
    """Encode ``obj`` into ``buf`` at ``pos`` (not past ``end``); return the new end."""
    if end is None:
        end = len(buf)
    if type(obj) is int:
        return pack_int(buf, pos, obj, end)
    if type(obj) is float:
        return pack_float(buf, pos, obj, end)
    if obj is None:
        return pack_raw(buf, pos, _NIL, end)
    if obj is True:
        return pack_raw(buf, pos, _TRUE, end)
    if obj is False:
        return pack_raw(buf, pos, _FALSE, end)
    if type(obj) is str:
        return _pack_bytes(buf, pos, obj.encode(), end, True)
    if depth >= MAX_DEPTH:
        raise ValueError("msgpack: nesting too deep")
    if type(obj) is list or type(obj) is tuple or (_ArrayType is not None and type(obj) is _ArrayType):
        return _pack_seq(buf, pos, obj, end, depth + 1)
    if isinstance(obj, dict):  # OrderedDict keeps key order, dict may not
        return _pack_map(buf, pos, obj, end, depth + 1)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _pack_bytes(buf, pos, obj, end, False)
    if isinstance(obj, int):  # int subclasses (IntEnum) on CPython
        return pack_int(buf, pos, int(obj), end)
    if isinstance(obj, float):
        return pack_float(buf, pos, float(obj), end)
    raise ValueError("msgpack: cannot encode this type")


def packb(obj, size=1024):
    """Encode ``obj`` to a new bytes object (convenience; allocates)."""
    buf = bytearray(size)
    n = pack_into(buf, 0, obj, size)
    return bytes(buf[:n])


class _Reader:
    # Decoding state: buffer, position, end. Kept in one object so the recursive
    # decoder passes a single reference.
    def __init__(self, buf, pos, end):
        self.buf = buf
        self.pos = pos
        self.end = end

    def take(self, k):
        p = self.pos
        if k < 0 or p + k > self.end:
            raise ValueError("msgpack: truncated")
        self.pos = p + k
        return p


def _text(buf, p, k):
    return str(bytes(buf[p:p + k]), "utf-8")


def _value(r, depth):
    if depth > MAX_DEPTH:
        raise ValueError("msgpack: nesting too deep")
    buf = r.buf
    c = buf[r.take(1)]
    if c < 0x80:
        return c
    if c >= 0xE0:
        return c - 0x100
    if c < 0x90:
        return _map(r, c & 0x0F, depth)
    if c < 0xA0:
        return _array(r, c & 0x0F, depth)
    if c < 0xC0:
        k = c & 0x1F
        return _text(buf, r.take(k), k)
    if c == 0xC0:
        return None
    if c == 0xC2:
        return False
    if c == 0xC3:
        return True
    if c == 0xCA:
        return _uk(">f", buf, r.take(4))[0]
    if c == 0xCB:
        return _uk(">d", buf, r.take(8))[0]
    if c == 0xCC:
        return buf[r.take(1)]
    if c == 0xCD:
        return _uk(">H", buf, r.take(2))[0]
    if c == 0xCE:
        return _uk(">I", buf, r.take(4))[0]
    if c == 0xCF:
        return _uk(">Q", buf, r.take(8))[0]
    if c == 0xD0:
        return _uk(">b", buf, r.take(1))[0]
    if c == 0xD1:
        return _uk(">h", buf, r.take(2))[0]
    if c == 0xD2:
        return _uk(">i", buf, r.take(4))[0]
    if c == 0xD3:
        return _uk(">q", buf, r.take(8))[0]
    if c == 0xD9 or c == 0xC4:
        k = buf[r.take(1)]
    elif c == 0xDA or c == 0xC5:
        k = _uk(">H", buf, r.take(2))[0]
    elif c == 0xDB or c == 0xC6:
        k = _uk(">I", buf, r.take(4))[0]
    elif c == 0xDC:
        return _array(r, _uk(">H", buf, r.take(2))[0], depth)
    elif c == 0xDD:
        return _array(r, _uk(">I", buf, r.take(4))[0], depth)
    elif c == 0xDE:
        return _map(r, _uk(">H", buf, r.take(2))[0], depth)
    elif c == 0xDF:
        return _map(r, _uk(">I", buf, r.take(4))[0], depth)
    else:
        raise ValueError("msgpack: unsupported type byte")
    p = r.take(k)
    if c >= 0xD9:
        return _text(buf, p, k)
    return bytes(buf[p:p + k])


def _array(r, n, depth):
    if n > r.end - r.pos:  # each element needs at least one byte
        raise ValueError("msgpack: truncated")
    out = []
    for _ in range(n):
        out.append(_value(r, depth + 1))
    return out


def _map(r, n, depth):
    if 2 * n > r.end - r.pos:
        raise ValueError("msgpack: truncated")
    out = {}
    for _ in range(n):
        key = _value(r, depth + 1)
        out[key] = _value(r, depth + 1)
    return out


def unpack(buf, pos=0, end=None):
    """Decode exactly one value from ``buf[pos:end]``; trailing bytes are an error."""
    if end is None:
        end = len(buf)
    r = _Reader(buf, pos, end)
    obj = _value(r, 0)
    if r.pos != end:
        raise ValueError("msgpack: trailing bytes")
    return obj
