"""The ``self_test`` command: every learnable edge must move in the commanded direction.

A module of its own, imported when the command first runs: boot then compiles less
(compiling from source peaks with the size of the module being compiled).
"""

from . import consts


def run(app, args):
    """Every learnable edge must move in the commanded direction. Gates: a charge then
    a discharge pulse (or a DAC step up then down) must raise then lower the gate
    read-back. Digipots: with the inputs driven, a few taps up then back must widen
    then narrow the edge's drop on every network (in a linear network an edge's drop
    rises with its resistance); a second input pattern is tried when the first gives
    the edge no drop to see. Edges end where they started."""
    app._idle()
    failed = []
    unchecked = []
    pos = app.learner.pos
    kind = app.limits.kind
    app.hal.read_gates(pos)
    pots = []
    for e in range(app.n_edges):
        app._feed()  # a gate's test and put-back take several pulses and reads
        if kind[e] == consts.K_POT:
            pots.append(e)
        elif kind[e] == consts.K_PULSE or kind[e] == consts.K_DAC:
            g = app._gate(e) if kind[e] == consts.K_PULSE else pos[e]
            if not _gate_moves(app, e, g, unchecked):
                failed.append(e)
            if kind[e] == consts.K_PULSE:  # charge and discharge rates differ: put the gate back
                app._set_edge(e, app.limits.clamp(e, g))
    for e in _pots_failing(app, pots, unchecked):
        failed.append(e)
    failed.sort()
    app.hal.read_gates(pos)
    app.rule.reset()
    if failed:
        app.learner.flt |= consts.F_SELF_TEST
    return {"ok": not failed, "failed": failed, "unchecked": unchecked}

def _gate_moves(app, e, g, unchecked):
    lim = app.limits
    if lim.kind[e] == consts.K_DAC:  # DAC gate: a step within the limits, then back
        s = max(1, (lim.hi[e] - lim.lo[e]) // 8)
        up = min(lim.hi[e], g + s)
        g0 = app.hal.read_gate(0, e)
        app.hal.set_dac_gate(e, up)
        app.clock.sleep_us(5 * lim.rc_us)
        g1 = app.hal.read_gate(0, e)
        app.hal.set_dac_gate(e, g)
        app.clock.sleep_us(5 * lim.rc_us)
        g2 = app.hal.read_gate(0, e)
        return g1 > g0 and g2 < g1
    return app._gates().self_test(e, unchecked)

def _drops(app, e, out):
    """|V_a - V_b| codes of edge ``e`` on every network into ``out``."""
    vf = app.learner.vf
    a = app.rule.ei[e]
    b = app.rule.ej[e]
    app.hal.settle()
    for net in range(app.nets):
        app.hal.read_nodes(net, vf)
        out[net] = abs(vf[a] - vf[b])

def _pots_failing(app, pots, unchecked):
    if not pots:
        return []
    lr = app.learner
    lim = app.limits
    undecided = list(pots)
    failed = []
    d0 = [0] * app.nets
    d1 = [0] * app.nets
    d2 = [0] * app.nets
    thr = 3 + 2 * app.nets  # codes: well above the oversampled noise
    n_in = max(1, lr.n_in)
    ei = app.rule.ei
    ej = app.rule.ej
    for e in pots:
        if all(ei[e] in h and ej[e] in h for h in app.held):
            unchecked.append(e)  # held at both ends everywhere: no drop to see
            undecided.remove(e)
    for pattern in range(2):
        xs = [app.vn * 0.8 * ((k + pattern) % n_in + 1) / n_in for k in range(lr.n_in)]
        codes = app._in_codes(xs)
        for k in range(lr.n_in):
            for line in lr.in_lines[k]:
                if line is not None:
                    app.hal.drive(line, codes[k])
        for line, code in lr.fixed:
            app.hal.drive(line, code)
        if app.nets == 1:
            app.hal.switch(False)
        left = []
        for e in undecided:
            app._feed()
            p = lr.pos[e]
            s = max(1, min(8, (lim.hi[e] - lim.lo[e]) // 4))
            q = s if p + s <= lim.hi[e] else -s  # +: more resistance
            if p + q < lim.lo[e]:  # a range narrower than the test step
                unchecked.append(e)
                continue
            _drops(app, e, d0)
            app.hal.move(e, q)
            _drops(app, e, d1)
            app.hal.move(e, -q)
            _drops(app, e, d2)
            seen = True
            wrong = False
            for n in range(app.nets):
                if ei[e] in app.held[n] and ej[e] in app.held[n]:
                    continue
                rise = (d1[n] - d0[n]) if q > 0 else (d0[n] - d1[n])
                back = (d1[n] - d2[n]) if q > 0 else (d2[n] - d1[n])
                if rise < -thr or back < -thr:
                    wrong = True
                elif rise <= thr or back <= thr:
                    seen = False
            if wrong:
                failed.append(e)
            elif not seen:
                left.append(e)
        undecided = left
    for e in undecided:  # no visible effect under either pattern
        failed.append(e)
    app.hal.park()  # inputs back to 0 V
    return failed
