"""Allocation-free fixed-point coupled-learning rule for the board's learning loop.

The rule (coupled learning with a power term, as in the authors' published code for
Stern et al., APL Machine Learning 2, 016114 (2024)), per edge e and step::

    dk_e = -(alpha/eta) * < (dV_e^C)^2 - (1 - lambda) * (dV_e^F)^2 >

computed on integer node codes (one code = ``volts_per_code`` volts) and turned into
actuator quanta: digipot taps, DAC codes of a DAC-set gate, or microseconds of a
gate charge/discharge pulse. The hot path (:meth:`Rule.add` per example,
:meth:`Rule.apply` per step) only does small-int arithmetic on preallocated arrays:
no floats, no allocation, every intermediate within +-2**30 (the small-int range of
32-bit boards). Floats are used only in :meth:`Rule.set_params` and the model helpers.
The scheme, its bounds and its measured error are in ``docs/fixed-point.md``.

Runs unchanged under MicroPython and CPython (``learnboard.firmware.lbfw.rule``).
"""

from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import consts

# Edge kinds (``kind`` array): the numbers of ``consts.K_*``, repeated as const() so the
# step's comparisons compile to literals (an imported name costs a global lookup per
# edge); checked against the table below. The actuator coordinate ``pos`` is the tap
# (POT), the gate DAC code (DAC) or the gate read-back code (PULSE); +1 always means "up".
POT = const(1)  # digipot: +1 tap = more resistance = less conductance
PULSE = const(2)  # pulse-charged gate: out > 0 = charge pulse of out us, < 0 = discharge
DAC = const(3)  # DAC-set gate: +1 code = higher gate = more conductance
if (POT, PULSE, DAC) != (consts.K_POT, consts.K_PULSE, consts.K_DAC):
    raise ImportError("lbfw.rule: edge kinds differ from lbfw.consts")

# Modes.
ACCUM = const(0)  # fractional accumulation, whole quanta emitted
SIGN = const(1)  # Gen-1 sign rule: one quantum per step in the sign of -dk

FRAC = const(16)  # fractional bits of the accumulators: ONE = one tap / code / pulse-code
ONE = const(65536)
SMAX = const(46)  # any |t| < 2**30 shifted right by 31 rounds to 0: larger s is 0
SAT = const(0x10000000)  # 2**28: saturation of one scaled term (4096 quanta)
SMALL = const(8192)  # |x| below this: x * m is exact (< 2**28)
LIMIT = const(0x3FFFFFFF)  # 2**30 - 1: the largest small int on a 32-bit board


def encode(x, smin=0):
    """Encode ``x >= 0`` as ``(m, s, clipped)`` with ``x ~= m / 2**s``.

    ``2**14 <= m < 2**15`` (relative error <= 2**-15) and ``smin <= s <= SMAX``; ``m = 0``
    when ``x`` is below ``2**-SMAX``; ``clipped`` is True when ``x`` was too large and was
    saturated to ``32767 / 2**smin``. Config-time only (uses floats).
    """
    x = float(x)
    if not x > 0.0:
        return 0, smin, False
    s = 0
    while x < 16384.0:
        x *= 2.0
        s += 1
        if s > SMAX + 15:
            return 0, smin, False
    while x >= 32768.0:
        x *= 0.5
        s -= 1
    m = int(x + 0.5)
    if m >= 32768:
        m >>= 1
        s -= 1
    if s > SMAX:  # far below one accumulator unit for any sum: exactly zero
        return 0, smin, False
    if s < smin:
        return 32767, smin, True
    return m, s, False


def mulshift(x, m, s):
    """``x * m / 2**s`` rounded and saturated to +-SAT, every intermediate within +-2**30.

    ``|x| < 2**30``, ``0 <= m < 2**15``, ``0 <= s <= SMAX``. Exact product for
    ``|x| < SMALL``; otherwise ``x`` is split in 15-bit halves (``t = x*m/2**15``, rounded).
    Error <= 0.5 unit (exact branch), <= 0.75 unit (split, s >= 16) or <= 2**(14-s)
    units (split, s < 16: relative error < 2**-13). :meth:`Rule.apply` inlines this code.
    """
    if -SMALL < x < SMALL:
        t = x * m
    else:
        t = (x >> 15) * m + (((x & 0x7FFF) * m + 16384) >> 15)
        s -= 15
    if s > 0:
        if s > 31:
            s = 31
        d = ((t >> (s - 1)) + 1) >> 1
    else:
        d = t
        s = -s
        if s:
            if t > (SAT >> s):
                d = SAT
            elif t < -(SAT >> s):
                d = -SAT
            else:
                d = t << s
    if d > SAT:
        d = SAT
    elif d < -SAT:
        d = -SAT
    return d


def pot_gains(ntaps, r_min, r_max, taper="log"):
    """|d tap / d k| (taps per siemens = ohms) at each tap of a digipot.

    ``taper="log"``: R(t) = r_min * r**t with r = (r_max/r_min)**(1/(ntaps-1)) (X9C303:
    40 ohm .. 32 kohm over 100 taps, r ~= 1.07), so dk/dt = -k ln r and the gain is
    R(t) / ln r. ``taper="lin"``: R(t) = r_min + t*dR, dk/dt = -dR / R**2, gain R**2/dR.
    Tap 0 is the lowest resistance; up = more resistance. Config time only.
    """
    import math

    if ntaps < 2 or not 0 < r_min < r_max:
        raise ValueError("pot_gains: need ntaps >= 2 and 0 < r_min < r_max")
    out = array("f", bytes(4 * ntaps))
    if taper == "log":
        lnr = math.log(r_max / r_min) / (ntaps - 1)
        for t in range(ntaps):
            out[t] = r_min * math.exp(lnr * t) / lnr
    elif taper == "lin":
        dr = (r_max - r_min) / (ntaps - 1)
        for t in range(ntaps):
            r = r_min + dr * t
            out[t] = r * r / dr
    else:
        raise ValueError("pot_gains: taper must be 'log' or 'lin'")
    return out


def gate_gains(volts_per_code):
    """Gate codes per volt of gate change (for DAC and PULSE edges): ``1/volts_per_code``."""
    return array("f", [1.0 / volts_per_code])


class Rule:
    """Preallocated state and arrays of the on-board learning rule.

    Construction and :meth:`set_params` allocate; :meth:`begin`, :meth:`add`,
    :meth:`apply` and :meth:`commit` do not.

    Args:
        ei, ej: node index of each edge's two ends (the drop is V[ei] - V[ej]).
        kind: per-edge kind, POT / DAC / PULSE.
        model: per-edge index into ``models``.
        models: one gain table per actuator model: for POT, taps per siemens at each tap
            (:func:`pot_gains`, indexed by the tap); for DAC/PULSE, a single entry, gate
            codes per volt (:func:`gate_gains`). Scale a model's gains to give its edges a
            learning rate different from ``alpha``.
        lo, hi: per-edge actuator bounds (taps 0..ntaps-1; gate codes of the allowed range).
        vmax: largest node code (4095 for 12-bit codes); drops are within +-vmax.
    """

    def __init__(self, ei, ej, kind, model, models, lo, hi, vmax=4095):
        n = len(ei)
        for a in (ej, kind, model, lo, hi):
            if len(a) != n:
                raise ValueError("Rule: per-edge arrays must all have len(ei) entries")
        if not 0 < vmax <= 16383:
            raise ValueError("Rule: vmax must be in 1..16383")
        self.n = n
        self.ei = array("H", ei)
        self.ej = array("H", ej)
        self.kind = bytearray(kind)
        self.lo = array("i", lo)
        self.hi = array("i", hi)
        self.vmax = vmax
        base = []
        size = 0
        for g in models:
            base.append(size)
            size += len(g)
        self.gains = array("f", bytes(4 * size))
        k = 0
        for g in models:
            for x in g:
                if not x >= 0.0:
                    raise ValueError("Rule: model gains must be >= 0")
                self.gains[k] = x
                k += 1
        self.base = array("H", [base[model[e]] for e in range(n)])
        for e in range(n):
            span = len(models[model[e]])
            if self.kind[e] == POT and not 0 <= self.lo[e] <= self.hi[e] < span:
                raise ValueError("Rule: POT edge bounds must lie within its model's taps")
            if not POT <= self.kind[e] <= DAC:
                raise ValueError("Rule: kind must be POT, DAC or PULSE")
        # Factor tables (mantissa, shift) for the S_d and S_f sums; see set_params.
        self.fm = array("h", bytes(2 * size))
        self.fs = bytearray(size)
        self.lm = array("h", bytes(2 * size))
        self.ls = bytearray(size)
        # Per-edge step sums (code**2): S_d = sum(dVc**2 - dVf**2), S_f = sum(dVf**2).
        self.sd = array("i", bytes(4 * n))
        self.sf = array("i", bytes(4 * n))
        self.acc = array("i", bytes(4 * n))  # residue, 2**-16 quanta
        self.out = array("i", bytes(4 * n))  # actuation of the last apply()
        self.count = 0
        self.clipped = False
        self.hi16 = 0
        self.lo16 = 1
        self.set_params(alpha=0.0, eta=1.0, lam=0.0, volts_per_code=1.0)

    # -- configuration (allocates; call only when parameters change) ----------------

    def set_params(self, alpha, eta, lam, volts_per_code, n_examples=1, mode=ACCUM, p=1.0,
                   seed=None, max_taps=1, max_codes=16, max_us=100, rc_us=2200,
                   g_charge=0, g_discharge=0, dead=0, sign_codes=1, sign_us=100):
        """Set the learning parameters from floats and precompute the integer tables.

        Args:
            alpha: learning rate; S/V**2 per step for POT edges, V/V**2 for gates.
            eta: nudge amplitude (0 < eta <= 1).
            lam: power-term weight lambda, clipped to [0, 1].
            volts_per_code: volts of one node code.
            n_examples: :meth:`add` calls per step (the mean's divisor).
            mode: ACCUM or SIGN.
            p: probability that an edge updates in a step (desynchronous mode when < 1).
            seed: 32-bit seed of the edge-selection PRNG (None keeps the current state).
            max_taps / max_codes / max_us: largest |out| per step of POT / DAC / PULSE edges.
            rc_us: gate RC time constant in us (2.2 uF * 1 kohm = 2200).
            g_charge / g_discharge: gate voltage, in gate codes, a charge / discharge pulse
                drives toward (the rails beyond the gate's allowed range).
            dead: SIGN mode dead band on |<u>| in code**2 (u = dVc**2 - (1-lam) dVf**2).
            sign_codes / sign_us: SIGN mode step of DAC / PULSE edges.
        """
        if not 0.0 < eta <= 1.0:
            raise ValueError("eta must be in (0, 1]")
        if not alpha >= 0.0:
            raise ValueError("alpha must be >= 0")
        if not 1 <= n_examples <= 65535:
            raise ValueError("n_examples must be in 1..65535")
        if not (0 <= max_taps < 8192 and 0 <= max_codes < 8192 and 0 <= max_us < 8192):
            raise ValueError("max_taps, max_codes and max_us must be in 0..8191")
        if not 16 <= rc_us < 65536:
            raise ValueError("rc_us must be in 16..65535")
        for g in (g_charge, g_discharge):
            if not 0 <= g < 16384:
                raise ValueError("gate codes must be in 0..16383")
        lam = min(1.0, max(0.0, float(lam)))
        # Batch shift: each example's squares are shifted right by bs so that the step
        # sums stay below 2**30: n * ceil(vmax**2 / 2**bs) < 2**30.
        bs = 0
        vv = self.vmax * self.vmax
        while n_examples * ((vv >> bs) + 1) >= 1 << 30:
            bs += 1
        self.bs = bs
        self.n_examples = n_examples
        self.mode = mode
        # Accumulator increment per unit of step sum, for gain 1:
        # (alpha/eta) * v**2 * 2**bs / n * 2**FRAC quanta per code**2.
        scale = alpha / eta * volts_per_code * volts_per_code * (1 << bs) / n_examples * ONE
        clipped = False
        for k in range(len(self.gains)):
            m, s, c1 = encode(scale * self.gains[k])
            self.fm[k] = m
            self.fs[k] = s
            m, s, c2 = encode(scale * self.gains[k] * lam)
            self.lm[k] = m
            self.ls[k] = s
            clipped = clipped or c1 or c2
        self.clipped = clipped
        # SIGN mode: w = S_d + lam*S_f, or S_d + S_f - (1-lam)*S_f, factor <= 0.5.
        self.s_hi = lam > 0.5
        m, s, _ = encode(1.0 - lam if self.s_hi else lam, 15)  # s >= 15: split branch
        self.s_m = m
        self.s_s = s
        self.dead = min(LIMIT, int(dead * n_examples / (1 << bs) + 0.5))
        self.p16 = min(65536, max(0, int(p * 65536.0 + 0.5)))
        if seed is not None:
            self.seed(seed)
        self.max_taps = max_taps
        self.max_codes = max_codes
        self.max_us = max_us
        self.rc_us = rc_us
        self.g_charge = g_charge
        self.g_discharge = g_discharge
        self.sign_codes = min(sign_codes, max_codes)
        self.sign_us = min(sign_us, max_us)

    def seed(self, s):
        """Seed the xorshift32 edge-selection PRNG (a zero seed is replaced by 1)."""
        s = int(s) & 0xFFFFFFFF
        if s == 0:
            s = 1
        self.hi16 = s >> 16
        self.lo16 = s & 0xFFFF

    def reset(self):
        """Clear the per-edge residues and the step sums (e.g. after restoring states)."""
        acc = self.acc
        for e in range(self.n):
            acc[e] = 0
        self.begin()

    # -- hot path (no allocation) ----------------------------------------------------

    def begin(self):
        """Start a step: clear the per-edge sums."""
        sd = self.sd
        sf = self.sf
        for e in range(self.n):
            sd[e] = 0
            sf[e] = 0
        self.count = 0

    def add(self, vf, vc):
        """Accumulate one example: ``vf``/``vc`` are node codes (0..vmax) free/clamped."""
        ei = self.ei
        ej = self.ej
        sd = self.sd
        sf = self.sf
        bs = self.bs
        if bs == 0:
            for e in range(self.n):
                i = ei[e]
                j = ej[e]
                a = vf[i] - vf[j]
                b = vc[i] - vc[j]
                a *= a
                sd[e] += b * b - a
                sf[e] += a
        else:
            h = 1 << (bs - 1)
            for e in range(self.n):
                i = ei[e]
                j = ej[e]
                a = vf[i] - vf[j]
                b = vc[i] - vc[j]
                a = (a * a + h) >> bs
                sd[e] += ((b * b + h) >> bs) - a
                sf[e] += a
        self.count += 1

    def apply(self, pos):
        """Turn the step's sums into actuations in ``self.out``; returns the edges moved.

        ``pos`` (per edge): current tap (POT), gate DAC code (DAC) or gate read-back
        code (PULSE). ``out[e]`` is a signed tap / DAC-code step, or a signed pulse width
        in us (> 0 charge toward ``g_charge``, < 0 discharge toward ``g_discharge``).
        Bounds (``lo``/``hi`` and the per-step maxima) are already applied. Call
        :meth:`commit` after the drivers moved POT/DAC edges.
        """
        if self.count != self.n_examples:
            raise ValueError("apply: add() calls differ from n_examples")
        kind = self.kind
        base = self.base
        lo = self.lo
        hi = self.hi
        sd = self.sd
        sf = self.sf
        acc = self.acc
        out = self.out
        fm = self.fm
        fs = self.fs
        lm = self.lm
        ls = self.ls
        p16 = self.p16
        rh = self.hi16
        rl = self.lo16
        sign = self.mode == SIGN
        s_m = self.s_m
        s_s = self.s_s
        s_hi = self.s_hi
        dead = self.dead
        mt = self.max_taps
        mc = self.max_codes
        mu = self.max_us
        rc = self.rc_us
        gch = self.g_charge
        gdis = self.g_discharge
        sc = self.sign_codes
        su = self.sign_us
        moved = 0
        for e in range(self.n):
            if p16 < 65536:
                # xorshift32 (13, 17, 5) on 16-bit halves: no intermediate above 2**29.
                t = ((rh << 13) | (rl >> 3)) & 0xFFFF
                rl ^= (rl << 13) & 0xFFFF
                rh ^= t
                rl ^= rh >> 1
                t = ((rh << 5) | (rl >> 11)) & 0xFFFF
                rl ^= (rl << 5) & 0xFFFF
                rh ^= t
                if rh >= p16:
                    out[e] = 0
                    continue
            k = kind[e]
            pe = pos[e]
            le = lo[e]
            he = hi[e]
            x = sd[e]
            y = sf[e]
            if sign:
                # w = S_d + lam*S_f (lam <= 0.5) or S_d + S_f - (1-lam)*S_f.
                t = (y >> 15) * s_m + (((y & 0x7FFF) * s_m) >> 15)
                if s_s > 15:
                    t = ((t >> (s_s - 16)) + 1) >> 1
                if s_hi:
                    w = x + y - t
                else:
                    w = x + t
                if w > dead:
                    q = 1
                elif w < -dead:
                    q = -1
                else:
                    q = 0
                if k == DAC:
                    q = -q * sc
                elif k == PULSE:
                    q = -q * su
                a = 0
            else:
                i = base[e]
                if k == POT:
                    if pe < le:
                        i += le
                    elif pe > he:
                        i += he
                    else:
                        i += pe
                # a = mulshift(S_d, fm, fs) + mulshift(S_f, lm, ls), inlined.
                m = fm[i]
                s = fs[i]
                if -SMALL < x < SMALL:
                    t = x * m
                else:
                    t = (x >> 15) * m + (((x & 0x7FFF) * m + 16384) >> 15)
                    s -= 15
                if s > 0:
                    if s > 31:
                        s = 31
                    a = ((t >> (s - 1)) + 1) >> 1
                else:
                    a = t
                    s = -s
                    if s:
                        if t > (SAT >> s):
                            a = SAT
                        elif t < -(SAT >> s):
                            a = -SAT
                        else:
                            a = t << s
                if a > SAT:
                    a = SAT
                elif a < -SAT:
                    a = -SAT
                m = lm[i]
                if m:  # S_f >= 0 and m >= 0: only the positive saturation can apply
                    s = ls[i]
                    if y < SMALL:
                        t = y * m
                    else:
                        t = (y >> 15) * m + (((y & 0x7FFF) * m + 16384) >> 15)
                        s -= 15
                    if s > 0:
                        if s > 31:
                            s = 31
                        d = ((t >> (s - 1)) + 1) >> 1
                    else:
                        d = t
                        s = -s
                        if s:
                            d = SAT if t > (SAT >> s) else t << s
                    if d > SAT:
                        d = SAT
                else:
                    d = 0
                a += d
                if k != POT:
                    a = -a  # u > 0 lowers a gate but raises a tap
                a += acc[e]
                if k != PULSE:
                    q = a >> FRAC if a >= 0 else -((-a) >> FRAC)
            if k != PULSE:
                mx = mt if k == POT else mc
                if q > mx:
                    q = mx
                elif q < -mx:
                    q = -mx
                if pe + q > he:
                    q = he - pe
                    if q < 0:
                        q = 0
                elif pe + q < le:
                    q = le - pe
                    if q > 0:
                        q = 0
                if not sign:
                    a -= q << FRAC
                    # Residue below one quantum; no push beyond an end stop.
                    if a >= ONE:
                        a = ONE - 1
                    elif a <= -ONE:
                        a = 1 - ONE
                    if (a > 0 and pe + q >= he) or (a < 0 and pe + q <= le):
                        a = 0
            else:
                # Pulse: rate = Q16 gate codes per us toward the driving rail.
                up = a > 0 or (sign and q > 0)
                if up:
                    span = gch - pe
                    room = he - pe
                else:
                    span = pe - gdis
                    room = pe - le
                rate = (span << FRAC) // rc if span > 0 else 0
                if rate <= 0 or room <= 0:
                    q = 0
                    if not sign:
                        a = 0
                else:
                    if not sign:
                        q = a // rate if up else -((-a) // rate)
                    if q > mu:
                        q = mu
                    elif q < -mu:
                        q = -mu
                    # Linear charging over-predicts the change, so this keeps the range.
                    r = (room << FRAC) // rate
                    if q > r:
                        q = r
                    elif q < -r:
                        q = -r
                    if not sign:
                        a -= q * rate
                        if a >= rate:
                            a = rate - 1
                        elif a <= -rate:
                            a = 1 - rate
                        if q == r or q == -r:
                            a = 0
            acc[e] = a
            out[e] = q
            if q:
                moved += 1
        self.hi16 = rh
        self.lo16 = rl
        return moved

    def commit(self, pos):
        """Add the last actuation to ``pos`` for POT and DAC edges (after the drivers moved)."""
        kind = self.kind
        out = self.out
        for e in range(self.n):
            if kind[e] != PULSE:
                pos[e] += out[e]


def make_rule(*args, **kw):
    """A :class:`Rule` with the viper kernels when the port has them, else the plain one.

    Same arguments as :class:`Rule`. The viper variant needs node codes in
    ``array('H')`` and ``pos`` in ``array('i')``.
    """
    try:
        from .rule_viper import Rule as Fast
    except Exception:  # CPython, or a port without the native emitter
        Fast = Rule
    return Fast(*args, **kw)
