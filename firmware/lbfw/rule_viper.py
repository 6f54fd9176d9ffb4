# ruff: noqa: F821  (ptr8/ptr16/ptr32 are viper built-ins)
"""``@micropython.viper`` kernels for :mod:`lbfw.rule` (optional; bit-identical results).

Same integer scheme and results as the plain :class:`lbfw.rule.Rule`, compiled to
machine code. Import fails under CPython and on ports without the native emitter, so
use :func:`lbfw.rule.make_rule`, which falls back to the plain class. ``mpy-cross``
needs ``-march`` for this file (``armv6m`` for the RP2040, ``xtensawin`` for the ESP32,
``x64`` for the unix VM).

Array types are fixed here: node codes ``array('H')``, ``pos`` ``array('i')``.
"""

from array import array

import micropython
from micropython import const

from . import rule

# rule.POT / PULSE / DAC (consts.K_*) as literals: viper compares native ints.
_POT = const(1)
_PULSE = const(2)
_DAC = const(3)
if (_POT, _PULSE, _DAC) != (rule.POT, rule.PULSE, rule.DAC):
    raise ImportError("lbfw.rule_viper: edge kinds differ from lbfw.consts")


@micropython.viper
def _add(n: int, ei, ej, vf, vc, sd, sf, bs: int):
    pi = ptr16(ei)
    pj = ptr16(ej)
    f = ptr16(vf)
    c = ptr16(vc)
    d = ptr32(sd)
    s = ptr32(sf)
    h = 0
    if bs > 0:
        h = 1 << (bs - 1)
    for e in range(n):
        i = int(pi[e])
        j = int(pj[e])
        a = int(f[i]) - int(f[j])
        b = int(c[i]) - int(c[j])
        a = (a * a + h) >> bs
        # 32-bit wrapping stores keep the two's complement sum right on any word size.
        d[e] = int(d[e]) + ((b * b + h) >> bs) - a
        s[e] = int(s[e]) + a


@micropython.viper
def _apply(pv, kind, base, lo, hi, sd, sf, acc, out, pos, fm, fs, lm, ls) -> int:
    P = ptr32(pv)
    K = ptr8(kind)
    B = ptr16(base)
    LO = ptr32(lo)
    HI = ptr32(hi)
    SD = ptr32(sd)
    SF = ptr32(sf)
    AC = ptr32(acc)
    OUT = ptr32(out)
    POS = ptr32(pos)
    FM = ptr16(fm)
    FS = ptr8(fs)
    LM = ptr16(lm)
    LS = ptr8(ls)
    one = 1
    sb = one << 31  # sign bit: (v ^ sb) - sb sign-extends a 32-bit load on 64-bit ports
    n = int(P[0])
    p16 = int(P[1])
    rh = int(P[2])
    rl = int(P[3])
    sign = int(P[4])
    s_m = int(P[5])
    s_s = int(P[6])
    s_hi = int(P[7])
    dead = int(P[8])
    mt = int(P[9])
    mc = int(P[10])
    mu = int(P[11])
    rc = int(P[12])
    gch = int(P[13])
    gdis = int(P[14])
    sc = int(P[15])
    su = int(P[16])
    ONE = 65536
    SAT = 0x10000000
    moved = 0
    for e in range(n):
        if p16 < 65536:
            t = ((rh << 13) | (rl >> 3)) & 0xFFFF
            rl ^= (rl << 13) & 0xFFFF
            rh ^= t
            rl ^= rh >> 1
            t = ((rh << 5) | (rl >> 11)) & 0xFFFF
            rl ^= (rl << 5) & 0xFFFF
            rh ^= t
            if rh >= p16:
                OUT[e] = 0
                continue
        k = int(K[e])
        pe = (int(POS[e]) ^ sb) - sb
        le = (int(LO[e]) ^ sb) - sb
        he = (int(HI[e]) ^ sb) - sb
        x = (int(SD[e]) ^ sb) - sb
        y = int(SF[e])
        a = 0
        q = 0
        if sign:
            t = (y >> 15) * s_m + (((y & 0x7FFF) * s_m) >> 15)
            if s_s > 15:
                t = ((t >> (s_s - 16)) + 1) >> 1
            if s_hi:
                w = x + y - t
            else:
                w = x + t
            if w > dead:
                q = 1
            elif w < 0 - dead:
                q = -1
            if k == _DAC:
                q = 0 - q * sc
            elif k == _PULSE:
                q = 0 - q * su
        else:
            i = int(B[e])
            if k == _POT:
                if pe < le:
                    i += le
                elif pe > he:
                    i += he
                else:
                    i += pe
            m = int(FM[i])
            sh = int(FS[i])
            if x > -8192 and x < 8192:
                t = x * m
            else:
                t = (x >> 15) * m + (((x & 0x7FFF) * m + 16384) >> 15)
                sh -= 15
            if sh > 0:
                if sh > 31:
                    sh = 31
                a = ((t >> (sh - 1)) + 1) >> 1
            else:
                a = t
                sh = 0 - sh
                if sh > 0:
                    if t > (SAT >> sh):
                        a = SAT
                    elif t < 0 - (SAT >> sh):
                        a = 0 - SAT
                    else:
                        a = t << sh
            if a > SAT:
                a = SAT
            elif a < 0 - SAT:
                a = 0 - SAT
            m = int(LM[i])
            sh = int(LS[i])
            if y < 8192:
                t = y * m
            else:
                t = (y >> 15) * m + (((y & 0x7FFF) * m + 16384) >> 15)
                sh -= 15
            if sh > 0:
                if sh > 31:
                    sh = 31
                d = ((t >> (sh - 1)) + 1) >> 1
            else:
                d = t
                sh = 0 - sh
                if sh > 0:
                    if t > (SAT >> sh):
                        d = SAT
                    else:
                        d = t << sh
            if d > SAT:
                d = SAT
            a += d
            if k != _POT:
                a = 0 - a
            a += (int(AC[e]) ^ sb) - sb
            if k != _PULSE:
                if a >= 0:
                    q = a >> 16
                else:
                    q = 0 - ((0 - a) >> 16)
        if k != _PULSE:
            mx = mc
            if k == _POT:
                mx = mt
            if q > mx:
                q = mx
            elif q < 0 - mx:
                q = 0 - mx
            if pe + q > he:
                q = he - pe
                if q < 0:
                    q = 0
            elif pe + q < le:
                q = le - pe
                if q > 0:
                    q = 0
            if not sign:
                a -= q << 16
                if a >= ONE:
                    a = ONE - 1
                elif a <= 0 - ONE:
                    a = 1 - ONE
                if (a > 0 and pe + q >= he) or (a < 0 and pe + q <= le):
                    a = 0
        else:
            up = a > 0 or (sign and q > 0)
            if up:
                span = gch - pe
                room = he - pe
            else:
                span = pe - gdis
                room = pe - le
            rate = 0
            if span > 0:
                rate = (span << 16) // rc
            if rate <= 0 or room <= 0:
                q = 0
                if not sign:
                    a = 0
            else:
                if not sign:
                    if up:
                        q = a // rate
                    else:
                        q = 0 - ((0 - a) // rate)
                if q > mu:
                    q = mu
                elif q < 0 - mu:
                    q = 0 - mu
                r = (room << 16) // rate
                if q > r:
                    q = r
                elif q < 0 - r:
                    q = 0 - r
                if not sign:
                    a -= q * rate
                    if a >= rate:
                        a = rate - 1
                    elif a <= 0 - rate:
                        a = 1 - rate
                    if q == r or q == 0 - r:
                        a = 0
        AC[e] = a
        OUT[e] = q
        if q != 0:
            moved += 1
    P[2] = rh
    P[3] = rl
    return moved


class Rule(rule.Rule):
    """:class:`lbfw.rule.Rule` with viper kernels; needs node codes in ``array('H')`` and
    ``pos`` in ``array('i')``."""

    def set_params(self, *args, **kw):
        super().set_params(*args, **kw)
        self.pv = array("i", [self.n, self.p16, self.hi16, self.lo16,
                              1 if self.mode == rule.SIGN else 0, self.s_m, self.s_s,
                              1 if self.s_hi else 0, self.dead, self.max_taps,
                              self.max_codes, self.max_us, self.rc_us, self.g_charge,
                              self.g_discharge, self.sign_codes, self.sign_us])

    def seed(self, s):
        super().seed(s)
        pv = getattr(self, "pv", None)
        if pv is not None:
            pv[2] = self.hi16
            pv[3] = self.lo16

    def add(self, vf, vc):
        _add(self.n, self.ei, self.ej, vf, vc, self.sd, self.sf, self.bs)
        self.count += 1

    def apply(self, pos):
        if self.count != self.n_examples:
            raise ValueError("apply: add() calls differ from n_examples")
        pv = self.pv
        moved = _apply(pv, self.kind, self.base, self.lo, self.hi, self.sd, self.sf,
                       self.acc, self.out, pos, self.fm, self.fs, self.lm, self.ls)
        self.hi16 = pv[2]
        self.lo16 = pv[3]
        return moved
