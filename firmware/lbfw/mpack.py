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


def _room(buf, pos, k, end):
    if pos + k > end:
        raise ValueError("msgpack: value does not fit the frame")


def pack_raw(buf, pos, data, end):
    """Copy already-encoded msgpack bytes ``data`` into ``buf``; return the new end."""
    k = len(data)
    _room(buf, pos, k, end)
    buf[pos:pos + k] = data
    return pos + k


def pack_int(buf, pos, v, end):
    """Encode an int; return the new end."""
    if 0 <= v:
        if v < 0x80:
            _room(buf, pos, 1, end)
            buf[pos] = v
            return pos + 1
        if v < 0x100:
            _room(buf, pos, 2, end)
            buf[pos] = 0xCC
            buf[pos + 1] = v
            return pos + 2
        if v < 0x10000:
            _room(buf, pos, 3, end)
            buf[pos] = 0xCD
            _pk(">H", buf, pos + 1, v)
            return pos + 3
        if v < 0x100000000:
            _room(buf, pos, 5, end)
            buf[pos] = 0xCE
            _pk(">I", buf, pos + 1, v)
            return pos + 5
        if not (v >> 64):
            _room(buf, pos, 9, end)
            buf[pos] = 0xCF
            _pk(">Q", buf, pos + 1, v)
            return pos + 9
        raise ValueError("msgpack: int out of range")
    if v >= -32:
        _room(buf, pos, 1, end)
        buf[pos] = v & 0xFF
        return pos + 1
    if v >= -0x80:
        _room(buf, pos, 2, end)
        buf[pos] = 0xD0
        buf[pos + 1] = v & 0xFF
        return pos + 2
    if v >= -0x8000:
        _room(buf, pos, 3, end)
        buf[pos] = 0xD1
        _pk(">h", buf, pos + 1, v)
        return pos + 3
    if v >= -0x80000000:
        _room(buf, pos, 5, end)
        buf[pos] = 0xD2
        _pk(">i", buf, pos + 1, v)
        return pos + 5
    if (v >> 63) == -1:
        _room(buf, pos, 9, end)
        buf[pos] = 0xD3
        _pk(">q", buf, pos + 1, v)
        return pos + 9
    raise ValueError("msgpack: int out of range")


def pack_float(buf, pos, v, end):
    """Encode a float as float32 (beyond its range: +-inf, as the boards do); return the new end."""
    _room(buf, pos, 5, end)
    buf[pos] = 0xCA
    try:
        _pk(">f", buf, pos + 1, v)
    except OverflowError:  # CPython refuses what MicroPython rounds to inf
        _pk(">f", buf, pos + 1, float("inf") if v > 0 else float("-inf"))
    return pos + 5


def _pack_len(buf, pos, n, end, fix, fixmax, c8, c16, c32):
    # Header of a str/bin/array/map of length n (c8 = 0 when there is no 8-bit form).
    if n <= fixmax:
        _room(buf, pos, 1, end)
        buf[pos] = fix | n
        return pos + 1
    if c8 and n < 0x100:
        _room(buf, pos, 2, end)
        buf[pos] = c8
        buf[pos + 1] = n
        return pos + 2
    if n < 0x10000:
        _room(buf, pos, 3, end)
        buf[pos] = c16
        _pk(">H", buf, pos + 1, n)
        return pos + 3
    _room(buf, pos, 5, end)
    buf[pos] = c32
    _pk(">I", buf, pos + 1, n)
    return pos + 5


def array_header(buf, pos, n, end):
    """Encode the header of an n-element array; the caller then packs n values."""
    return _pack_len(buf, pos, n, end, 0x90, 15, 0, 0xDC, 0xDD)


def map_header(buf, pos, n, end):
    """Encode the header of an n-pair map; the caller then packs n keys and values."""
    return _pack_len(buf, pos, n, end, 0x80, 15, 0, 0xDE, 0xDF)


def pack_into(buf, pos, obj, end=None, depth=0):
    """Encode ``obj`` into ``buf`` at ``pos`` (not past ``end``); return the new end."""
    if end is None:
        end = len(buf)
    if depth > MAX_DEPTH:
        raise ValueError("msgpack: nesting too deep")
    if obj is None:
        _room(buf, pos, 1, end)
        buf[pos] = 0xC0
        return pos + 1
    if obj is True or obj is False:
        _room(buf, pos, 1, end)
        buf[pos] = 0xC3 if obj else 0xC2
        return pos + 1
    t = type(obj)
    if t is int:
        return pack_int(buf, pos, obj, end)
    if t is float:
        return pack_float(buf, pos, obj, end)
    if t is str:
        data = obj.encode()
        pos = _pack_len(buf, pos, len(data), end, 0xA0, 31, 0xD9, 0xDA, 0xDB)
        return pack_raw(buf, pos, data, end)
    if t is bytes or t is bytearray or t is memoryview:
        k = len(obj)
        pos = _pack_len(buf, pos, k, end, 0, -1, 0xC4, 0xC5, 0xC6)
        return pack_raw(buf, pos, obj, end)
    if t is list or t is tuple or (t is _ArrayType and _ArrayType is not None):
        pos = array_header(buf, pos, len(obj), end)
        for item in obj:
            pos = pack_into(buf, pos, item, end, depth + 1)
        return pos
    if t is dict or isinstance(obj, dict):  # OrderedDict keeps key order, dict may not
        pos = map_header(buf, pos, len(obj), end)
        for key in obj:
            pos = pack_into(buf, pos, key, end, depth + 1)
            pos = pack_into(buf, pos, obj[key], end, depth + 1)
        return pos
    if isinstance(obj, int):  # int subclasses (enum-like) on CPython
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
