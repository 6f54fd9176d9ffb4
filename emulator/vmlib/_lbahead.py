"""The VM's side of the world server's run-ahead (``learnboard.emulator.read_ahead``),
for ``machine.py``: a script of requests the world ran ahead, with their answers, is
checked against the firmware's requests as they come; matching ones are not sent, reads
are answered from it, and ``C`` tells the world how much was used. Loaded once the
firmware has booted (``machine._script_buffer``); allocation-free after that (the
learning step runs heap-locked)."""

import machine as _m

_SCRIPT_MAX = 2048  # keep equal to learnboard.emulator.read_ahead.SCRIPT_MAX


def buffer():
    """Make the script buffer and tell the world (``K``); False if the heap has no room."""
    try:
        _m._sp = bytearray(_SCRIPT_MAX)
    except MemoryError:
        return False
    _m._out[_m._n] = 75  # 'K'
    _m._queued(1)
    return True


def has(k):
    """Whether the ``k`` request bytes at ``_out[_n]`` are the script's next (then they
    are used up); if not, the script ends before them (``end``)."""
    sp = _m._sp
    out = _m._out
    a = _m._n
    c = _m._sp_cur
    op = out[a]
    if (op == 112 or op == 68 or op == 80) and c + k <= _m._sp_len and op == sp[c]:
        # unrolled: the requests are 3 (P), 4 (p) or 5 (D) bytes
        if out[a + 1] == sp[c + 1] and out[a + 2] == sp[c + 2] and \
                (k < 4 or out[a + 3] == sp[c + 3]) and (k < 5 or out[a + 4] == sp[c + 4]):
            c += k
            _m._sp_cur = c
            if c == _m._sp_len:
                end(0)
            return True
    end(k)
    return False


def end(k):
    """Tell the world how much of its script was used (``C``), put before the ``k``
    request bytes queued at ``_out[_n]``."""
    out = _m._out
    n = _m._n
    for i in range(k - 1, -1, -1):
        out[n + 3 + i] = out[n + i]
    c = _m._sp_cur
    out[n] = 67  # 'C'
    out[n + 1] = c & 0xFF
    out[n + 2] = c >> 8
    _m._n = n + 3
    _m._sp_cur = -1


def block(k):
    """The block read at ``_out[_n]`` answered from the script (its clock and
    conversions read from the script) if it is the script's next request."""
    sp = _m._sp
    out = _m._out
    a = _m._n
    c = _m._sp_cur
    if c + 8 + 2 * k <= _m._sp_len and out[a] == sp[c] and out[a + 1] == sp[c + 1] \
            and out[a + 2] == sp[c + 2] and out[a + 3] == sp[c + 3]:
        _m._adopt(sp[c + 4] | (sp[c + 5] << 8) | (sp[c + 6] << 16) | ((sp[c + 7] & 0x3F) << 24))
        _m._bb = sp  # (the script stays until the next fetch brings another)
        _m._bo = c + 8
        c += 8 + 2 * k
        _m._sp_cur = c
        if c == _m._sp_len:
            end(0)
        return True
    end(4)
    return False
