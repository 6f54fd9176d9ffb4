"""The learning step (the coupled-learning loop of ``docs/firmware.md``): per example, drive the inputs, settle, measure
the free state; drive the outputs to the nudged values, settle, measure the clamped
state; feed both to the rule. Then compute the update, check it against the safety
bounds (refuse: nothing moves, fault flag), actuate, commit.

Allocation-free: node codes, targets and input codes are integers in preallocated
arrays; every method keeps its locals few (MicroPython heap-allocates call frames of
more than ~11 slots).
"""

from array import array

from . import consts
from .consts import F_LIMIT, const  # const: micropython.const (a function under CPython)

# consts.K_PULSE / K_DAC as literals: the step compares every edge's kind (an imported
# name costs a global lookup, a local one more frame slot)
_PULSE = const(2)
_DAC = const(3)
if (_PULSE, _DAC) != (consts.K_PULSE, consts.K_DAC):
    raise ImportError("lbfw.learn: edge kinds differ from lbfw.consts")


class Learner:
    """Example storage and the step loop over a ``hal`` (see ``hal.py``), a rule
    (``rule.make_rule``) and ``safety.Limits``.

    ``in_lines[i]`` / ``out_lines[k]`` are per-network tuples of voltage-output indices
    (``None`` where a network has no driver); ``out_node[k]`` is the node of output k;
    ``clamp_k16`` converts a node code to a clamp-driver code (Q16). A differential output
    (``V_a - V_b``) has its second node in ``out_node_b[k]`` (-1: single-ended) and that
    node's clamp lines in ``out_lines_b[k]``; its targets are signed codes.
    """

    def __init__(self, hal, rule, limits, n_nodes, nets, in_lines, out_lines, out_node,
                 fixed, clamp_k16, clamp_max, max_examples, out_node_b=None, out_lines_b=None):
        self.hal = hal
        self.rule = rule
        self.lim = limits
        self.nets = nets
        self.cnet = 1 if nets == 2 else 0
        self.in_lines = in_lines
        self.out_lines = out_lines
        self.out_node = array("H", out_node)
        self.out_node_b = array("h", out_node_b or [-1] * len(out_node))
        self.out_lines_b = out_lines_b or tuple(() for _ in out_node)
        self.fixed = fixed  # ((line, code), ...) bias inputs, always driven
        self.clamp_k16 = clamp_k16
        self.clamp_max = clamp_max
        self.n_in = len(in_lines)
        self.n_out = len(out_node)
        self.max_examples = max_examples
        self.ex_in = array("H", bytes(2 * max_examples * max(1, self.n_in)))
        # signed: a differential output's target may be negative
        self.ex_out = array("h", bytes(2 * max_examples * max(1, self.n_out)))
        self.n_ex = 0
        self.vf = array("H", bytes(2 * n_nodes))
        self.vc = array("H", bytes(2 * n_nodes))
        self.pos = array("i", bytes(4 * rule.n))
        self.twin = array("i", bytes(4 * rule.n))  # network 1's gate codes (charging edges)
        self.tmask = bytearray(rule.n)
        self.batch = 1
        self.cursor = 0
        self.shuffle = False
        self.rng = 1
        self.nudge16 = 32768  # parameter "eta" (nudge amplitude), Q16
        # The null offset (parameter "null_every"): the rule's step sums at zero nudge, per
        # edge, subtracted from every step's sums. What the rule sees when the clamped
        # network is driven at the free outputs is bias (twin mismatch, converter offsets),
        # not a learning signal; removing it lowers the precision floor.
        self.off = array("i", bytes(4 * rule.n))
        self.null_every = 0  # 0: no offset
        self.null_left = 0  # steps until the next measurement
        self.err = 0  # sum of squared output errors, code**2, since reset_stats
        self.err_n = 0
        self.flt = 0
        self.refused = 0

    # -- examples -----------------------------------------------------------------------

    def apply_inputs(self, i):
        """Drive example ``i``'s input codes (and the fixed biases) on every network."""
        for k in range(self.n_in):
            self._drive_in(i, k)
        for k in range(len(self.fixed)):
            self.hal.drive(self.fixed[k][0], self.fixed[k][1])

    def _drive_in(self, i, k):
        self._drive_all(self.in_lines[k], self.ex_in[i * self.n_in + k])

    def _drive_all(self, lines, code):
        # Index loops: a for-in over a tuple reserves 4 more frame slots for its iterator.
        for k in range(len(lines)):
            if lines[k] is not None:
                self.hal.drive(lines[k], code)

    def _next(self):
        if self.shuffle:
            # 30-bit xorshift; the bits a shift would push past bit 29 are masked off
            # first, so no intermediate reaches 2**30 (a heap int on a 32-bit board)
            r = self.rng
            r ^= (r & 0x1FFFF) << 13
            r ^= r >> 17
            r ^= (r & 0x1FFFFFF) << 5
            self.rng = r
            return r % self.n_ex
        i = self.cursor
        self.cursor = (i + 1) % self.n_ex
        return i

    # -- the step -----------------------------------------------------------------------

    def step(self):
        """One learning step over ``batch`` examples; returns edges moved (-1: refused)."""
        self.rule.begin()
        for _ in range(self.batch):
            self._example(self._next())
        if self.null_every:
            self._subtract()
            self.null_left -= 1
        return self._actuate()

    def measure_null(self):
        """The null offset: one step's examples with the clamps driven at the free outputs
        (nudge 0), summed as a step sums them and kept in ``off``; nothing moves and the
        error statistics are left alone (this is not a step)."""
        n16 = self.nudge16
        err = self.err
        err_n = self.err_n
        self.nudge16 = 0
        self.rule.begin()
        try:
            for _ in range(self.batch):
                self._example(self._next())
        finally:
            self.nudge16 = n16
            self.err = err
            self.err_n = err_n
        sd = self.rule.sd
        off = self.off
        for e in range(len(off)):
            off[e] = sd[e]
        self.null_left = self.null_every

    def clear_null(self):
        """Forget the offset (a new measurement is due at the next step if enabled)."""
        off = self.off
        for e in range(len(off)):
            off[e] = 0
        self.null_left = 0

    def _subtract(self):
        # sd - off, saturated at +-(2**30 - 1): both lie within that range, but their
        # difference may not, and 2**30 is a heap int on a 32-bit board (a MemoryError in
        # the locked step); the bounds are compared first, so no intermediate passes it.
        sd = self.rule.sd
        off = self.off
        for e in range(len(off)):
            o = off[e]
            x = sd[e]
            if o > 0 and x < o - 0x3FFFFFFF:
                sd[e] = -0x3FFFFFFF
            elif o < 0 and x > o + 0x3FFFFFFF:
                sd[e] = 0x3FFFFFFF
            else:
                sd[e] = x - o

    def _example(self, i):
        hal = self.hal
        self.apply_inputs(i)
        if self.nets == 1:
            hal.switch(False)
        hal.settle()
        hal.read_nodes(0, self.vf)
        self._clamp(i)
        hal.settle()
        hal.read_nodes(self.cnet, self.vc)
        if self.nets == 1:
            hal.switch(False)
        self.rule.add(self.vf, self.vc)

    def _clamp(self, i):
        for k in range(self.n_out):
            self._nudge(k, self.ex_out[i * self.n_out + k])
        if self.nets == 1:
            self.hal.switch(True)

    def _nudge(self, k, target, count=True):
        """Drive output k's clamp toward ``target`` (a code) by the nudge; ``count``: add
        the free error to the step's error sum (False: an evaluation, not a step)."""
        b = self.out_node_b[k]
        if b >= 0:
            self._nudge_pair(k, b, target, count)
            return
        yf = self.vf[self.out_node[k]]
        d = target - yf
        if count:
            self._err(d)
        self._drive_clamp(k, yf + ((self.nudge16 * d) >> 16))

    def _nudge_pair(self, k, b, target, count):
        """A differential output: both nodes driven, each by half the nudge and in
        opposite directions, so the pair's common mode stays where the free network had
        it and its difference moves by the whole nudge (the lab's symmetric clamp)."""
        va = self.vf[self.out_node[k]]
        vb = self.vf[b]
        d = target - (va - vb)
        if count:
            self._err(d)
        h = (self.nudge16 * d) >> 17
        self._drive_clamp(k, va + h)
        self._drive_code(self.out_lines_b[k][self.cnet], vb - h, k)

    def _err(self, d):
        # compared before adding: err + d*d itself may pass 2**30 (a heap int, i.e. a
        # MemoryError in the locked step on a 32-bit board); the sum saturates instead
        d *= d
        if self.err < 0x3FFFFFFF - d and self.err_n < 0x3FFFFFFF:
            self.err += d
            self.err_n += 1

    def _drive_clamp(self, k, yc):
        self._drive_code(self.out_lines[k][self.cnet], yc, k)

    def _drive_code(self, line, yc, k):
        # node code -> the clamp driver's code, inside the driver's and the node's range
        code = (yc * self.clamp_k16[k]) >> 16
        if code < 0:
            code = 0
        elif code > self.clamp_max:
            code = self.clamp_max
        self.hal.drive(line, code)

    def _actuate(self):
        r = self.rule
        self.hal.read_gates(self.pos)
        moved = r.apply(self.pos)
        if not moved:
            return 0
        if self.nets == 2:
            self._twin_bounds(r.out)
        if not self.lim.check(r.out, self.pos):
            self.flt |= F_LIMIT
            self.refused += 1
            return -1
        self._move(r.out)
        r.commit(self.pos)
        if not (self.lim.nodes_ok(self.vf) and self.lim.nodes_ok(self.vc)):
            self.flt |= F_LIMIT
        return moved

    def _twin_bounds(self, out):
        """Drop pulses that would take network 1's gate beyond its bound. The rule plans
        from network 0's read-back; the twins get the same pulses, but their capacitors
        and leakage differ, so they drift apart (network 1 was found 40 mV beyond the
        upper limit, and below the lower one). A charge is checked where the twin is
        higher, a discharge where it is lower. Only the pulsed edges' twins are read."""
        m = self.tmask
        kind = self.lim.kind
        for e in range(len(out)):
            m[e] = _PULSE if kind[e] == _PULSE and out[e] else 0
        g = self.twin
        self.hal.read_gates(g, 1, m)
        for e in range(len(out)):
            if m[e] and self._twin_out(e, out[e], g[e]):
                out[e] = 0

    def _twin_out(self, e, q, g):
        if q > 0:
            return g > self.pos[e] and not self.lim.pulse_ok(e, q, g)
        return g < self.pos[e] and not self.lim.pulse_ok(e, q, g)

    def _move(self, out):
        hal = self.hal
        kind = self.lim.kind
        pos = self.pos
        for e in range(len(out)):
            if out[e]:
                if kind[e] == _DAC:  # a DAC gate is written absolute: its code after the move
                    hal.set_dac_gate(e, pos[e] + out[e])
                else:
                    hal.move(e, out[e])

    def reset_stats(self):
        self.err = 0
        self.err_n = 0
