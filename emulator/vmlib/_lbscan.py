"""``machine.adc_scan`` for the emulator's VM (see ``machine.py``): the firmware HAL's
``read_nodes`` / ``read_gates`` loop — per read node: select the mux channel, enable,
settle, ``ADC.read_u16_sum(n, shift) // n``, disable — as one request: the world runs
that loop (:meth:`World.adc_scan`, the same pin writes, clock and codes) and answers
the codes and the levels the loop left on the muxes' pins, which are mirrored here.
The muxes' pins are sent once per HAL (``M``), each scan is ``N``. On a board (no
``adc_scan``) the HAL runs the loop itself. A module of its own, loaded with the first
``ADC`` (after the firmware has read its ``board.json``, which needs a large free block
of the VM's heap at boot). Allocation-free: it runs under the firmware's ``heap_lock``;
small functions (MicroPython heap-allocates frames of more than 11 slots)."""

import machine as _m

_table_for = None  # the HAL mux list whose pins the world holds
_npin = 0  # pin levels in a scan's answer (per mux: select pins, then enable)


def adc_scan(mux, rd, settle_us, n, shift, out, kind):
    """The HAL's loop over ``rd`` (per index: mux number + 1 or 0, channel), muxes
    ``mux`` (select pins, enable pin, enable level, ADC): every index of ``out``
    (read_nodes), or only those where ``kind`` is 2 (read_gates: pulse gates)."""
    count = len(out) if kind is None else len(kind)
    if not 0 < n < 256 or count > 64 or not 0 <= settle_us < 65536:
        _loop(mux, rd, settle_us, n, shift, out, kind, count)  # beyond the request's fields
        return
    if _m._blk_ch >= 0:
        _m._end_run()
    if mux is not _table_for:
        _table(mux)
    _request(rd, settle_us, n, shift, count, kind)
    _answer(mux, out, count, kind)


def _loop(mux, rd, settle_us, n, shift, out, kind, count):
    for k in range(count):
        if kind is None or kind[k] == 2:
            out[k] = _one(mux, rd, k, settle_us, n, shift)


def _answer(mux, out, count, kind):
    rx = _m._recv(4 + 2 * count + _npin)
    _m._adopt_now()
    _results(rx, out, count, kind)
    at = 4 + 2 * count
    for j in range(len(mux)):
        at = _mirror(mux[j], rx, at)


def _room(k):
    if _m._n + k > len(_m._out):
        _m._flush()


def _table(mux):
    global _table_for, _npin
    _room(2 + 12 * len(mux))
    o = _m._out
    i = _m._n
    o[i] = 77  # 'M'
    o[i + 1] = len(mux)
    _npin = 0
    for j in range(len(mux)):
        _npin += _entry(mux[j], o, i + 2 + 12 * j)
    _m._n = i + 2 + 12 * len(mux)
    _table_for = mux


def _entry(m, o, i):
    """One mux: select count, 8 select GPIOs, enable GPIO (255: none), level, ADC."""
    sel = m[0]
    o[i] = len(sel)
    for b in range(8):
        o[i + 1 + b] = sel[b].id if b < len(sel) else 0
    o[i + 9] = 255 if m[1] is None else m[1].id
    o[i + 10] = m[2]
    o[i + 11] = m[3].channel
    return len(sel) + (0 if m[1] is None else 1)


def _request(rd, settle_us, n, shift, count, kind):
    size = 7 + count * (2 if kind is None else 3)
    _room(size)
    o = _m._out
    i = _m._n
    o[i] = 78  # 'N'
    o[i + 1] = settle_us & 0xFF
    o[i + 2] = settle_us >> 8
    o[i + 3] = n
    o[i + 4] = shift
    o[i + 5] = count
    o[i + 6] = 0 if kind is None else 1
    _copy(rd[0], o, i + 7, count)
    _copy(rd[1], o, i + 7 + count, count)
    if kind is not None:
        _copy(kind, o, i + 7 + 2 * count, count)
    _m._n = i + size
    _m._flush()


def _copy(src, o, at, count):
    for k in range(count):
        o[at + k] = src[k]


def _results(rx, out, count, kind):
    for k in range(count):
        if kind is None or kind[k] == 2:
            out[k] = rx[4 + 2 * k] | (rx[5 + 2 * k] << 8)


def _mirror(m, rx, at):
    """The levels the world's loop left on mux ``m``'s pins, as if written here."""
    sel = m[0]
    for b in range(len(sel)):
        _level(sel[b], rx[at + b])
    at += len(sel)
    if m[1] is not None:
        _level(m[1], rx[at])
        at += 1
    return at


def _level(pin, v):
    pin._v = v
    _m._lv[pin.id] = v


def _select(m, ch):
    sel = m[0]
    for b in range(len(sel)):
        sel[b].value((ch >> b) & 1)
    if m[1] is not None:
        m[1].value(m[2])


def _one(mux, rd, k, settle_us, n, shift):
    x = rd[0][k]
    if not x:
        return 0
    m = mux[x - 1]
    _select(m, rd[1][k])
    _m.sleep_us(settle_us)
    s = m[3].read_u16_sum(n, shift) // n
    if m[1] is not None:
        m[1].value(1 - m[2])
    return s
