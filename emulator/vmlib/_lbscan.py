"""``machine.adc_scan`` for the emulator's VM (see ``machine.py``): the firmware HAL's
``read_nodes`` / ``read_gates`` loop — per read node: select the mux channel, enable,
settle, ``ADC.read_u16_sum(n, shift) // n``, disable — queued as the same requests in
the same order and answered in one round trip. On a board (no ``adc_scan``) the HAL
runs that loop itself. A module of its own, loaded with the first ``ADC`` (after the
firmware has read its ``board.json``, which needs a large free block of the VM's heap
at boot). Allocation-free: it runs under the firmware's ``heap_lock``; small functions
(MicroPython heap-allocates frames of more than 11 slots)."""

import machine as _m


def adc_scan(mux, rd, settle_us, n, shift, out, kind):
    """The HAL's loop over ``rd`` (per index: mux number + 1 or 0, channel), muxes
    ``mux`` (select pins, enable pin, enable level, ADC): every index of ``out``
    (read_nodes), or only those where ``kind`` is 2 (read_gates: pulse gates)."""
    count = len(out) if kind is None else len(kind)
    if not 0 < n < 256:  # no one-request sums: the HAL's loop as it is
        for k in range(count):
            if kind is None or kind[k] == 2:
                out[k] = _one(mux, rd, k, settle_us, n, shift)
        return
    if _m._blk_ch >= 0:
        _m._end_run()
    for k in range(count):
        if kind is None or kind[k] == 2:
            _queue(mux, rd, k, settle_us, n, shift)
    _m._flush()
    for k in range(count):
        if kind is None or kind[k] == 2:
            out[k] = _take(rd, k, n)


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


def _queue(mux, rd, k, settle_us, n, shift):
    x = rd[0][k]
    if not x:
        return
    m = mux[x - 1]
    _select(m, rd[1][k])
    _m.sleep_us(settle_us)
    _u(m[3].channel, n, shift)
    if m[1] is not None:
        m[1].value(1 - m[2])


def _u(ch, n, shift):
    out = _m._out
    i = _m._n
    out[i] = 85  # 'U', answered after the flush
    out[i + 1] = ch
    out[i + 2] = n
    out[i + 3] = shift
    _m._queued(4)


def _take(rd, k, n):
    if not rd[0][k]:
        return 0
    rx = _m._recv(8)
    _m._adopt_now()
    return (rx[4] | (rx[5] << 8) | (rx[6] << 16) | (rx[7] << 24)) // n
