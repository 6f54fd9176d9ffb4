"""On-board safety limits, from the board description's ``lim`` table.

The board cannot measure edge currents, so every actuation is checked first against a
worst-case bound computed from the description: the largest node voltage ``vn`` over
the smallest possible edge resistance must stay below ``ie``. For digipots that gives
the lowest allowed tap (``r(t) * (1 - tolerance) + r_wiper >= vn / ie``, and the
description's own ``taps`` range); for gates the highest allowed gate voltage (the
description's ``g`` range, and ``vt + ie / (beta (1 + 3 spread) vn)`` from the triode
bound ``I <= beta (Vg - Vt) Vds``). Pulses are bounded with ``1 - exp(-x) <= x``: a
charge pulse of ``t`` us ends at most ``g + (G - g) t / RC``. After an actuation the
measured node codes are checked against ``vn`` too.

Every edge has two pairs of bounds. ``hard_lo``/``hard_hi`` are the description's own
(gate range, tap range, current bound): nothing the firmware does may take an edge past
them. ``lo``/``hi`` are where the firmware plans: the same for taps and DAC gates (they
land exactly where asked), moved inwards for pulse gates by what a planned pulse cannot
see (:meth:`Limits.pulse_margins`): the time a pulse conducts beyond the time asked, a
gate capacitor faster than nominal (``RC_TOL``), the read-back's noise and the idle
leakage between two looks. Every pulse outside the learning step is also checked
against the hard bounds with the exact charging law (:meth:`Limits.safe_us`).

The step's checks run on integers (codes, taps, us); nothing allocates.
"""

import math

# Relative tolerance of a gate's RC time constant the firmware plans for (capacitor and
# resistor together): a capacitor 5 % below nominal charges 5 % faster than planned.
RC_TOL = 0.05
# Gate read-back codes a decision may be off by (16x oversampled, 1 LSB noise, and the
# internal ADC's differential non-linearity near its E11 codes).
NOISE = 2


class Limits:
    """Per-edge bounds ``lo``/``hi`` in actuator units and the node-code bound ``vmax``."""

    def __init__(self, n_edges, vn_code):
        from array import array
        self.lo = array("i", bytes(4 * n_edges))
        self.hi = array("i", bytes(4 * n_edges))
        self.hard_lo = array("i", bytes(4 * n_edges))
        self.hard_hi = array("i", bytes(4 * n_edges))
        self.kind = bytearray(n_edges)  # 0 fixed, 1 pot, 2 pulse gate, 3 DAC gate
        self.vn_code = vn_code
        self.g_charge = 0
        self.rc_us = 2200

    def pot_bounds(self, e, part, lim, taps_range):
        """Lowest and highest safe tap of digipot edge ``e``."""
        nt = part["nt"]
        r_need = lim["vn"] / lim["ie"]
        lo = nt - 1
        for t in range(nt):
            if part["tp"] == "log":
                r = part["rmin"] * (part["rmax"] / part["rmin"]) ** (t / (nt - 1))
            else:
                r = part["rmin"] + (part["rmax"] - part["rmin"]) * t / (nt - 1)
            if r * (1.0 - part["tol"]) + part["rw"] >= r_need:
                lo = t
                break
        hi = nt - 1
        if taps_range is not None:
            lo = max(lo, taps_range[0])
            hi = min(hi, taps_range[1])
        self.kind[e] = 1
        self.lo[e] = self.hard_lo[e] = lo
        self.hi[e] = self.hard_hi[e] = hi

    def gate_bounds(self, e, part, lim, gate_vpc, kind):
        """Gate range of transistor edge ``e`` in gate codes (``gate_vpc`` V per code)."""
        g_hi = part["vgmax"]
        beta = part["beta"] * (1.0 + 3.0 * part["bs"])
        vt = part["vt"] - 3.0 * part["vts"]
        g_hi = min(g_hi, vt + lim["ie"] / (beta * lim["vn"]))
        g_lo = 0.0
        if lim["g"] is not None:
            g_lo = max(g_lo, lim["g"][0])
            g_hi = min(g_hi, lim["g"][1])
        self.kind[e] = kind
        self.lo[e] = self.hard_lo[e] = int(math.ceil(g_lo / gate_vpc))
        self.hi[e] = self.hard_hi[e] = int(g_hi / gate_vpc)

    def pulse_margins(self, e, over_us, leak_codes):
        """Move pulse gate ``e``'s planning bounds inwards from its hard bounds.

        The rule plans a pulse with the nominal RC and the time asked, linearly from the
        read-back. A pulse really conducts ``over_us`` longer (its switch-off) plus 2 us
        of pulse-to-pulse skew, at the end, where the gate is near the bound; a capacitor
        ``RC_TOL`` faster makes the linear plan short by at most ``t + (1-t) ln(1-t)``
        (t = RC_TOL) of the way to the rail, at a pulse of ``(1-t) ln(1/(1-t))`` RC; the
        read-back is off by ``NOISE``; an idle gate leaks ``leak_codes`` between two
        looks of :meth:`App.keep_gates`."""
        rcf = self.rc_us * (1.0 - RC_TOL)
        slack = over_us + 2
        eps = RC_TOL + (1.0 - RC_TOL) * math.log(1.0 - RC_TOL)
        xs = (1.0 - RC_TOL) * math.log(1.0 / (1.0 - RC_TOL))
        lo = self.hard_lo[e]
        hi = self.hard_hi[e]
        g = self.g_charge
        up = (g - hi) * slack / rcf + eps * (g - lo) + NOISE
        down = lo * slack / rcf + eps * lo / (1.0 - xs) + NOISE + leak_codes
        self.hi[e] = hi - int(math.ceil(up)) - 1
        self.lo[e] = lo + int(math.ceil(down)) + 1
        if self.lo[e] > self.hi[e]:
            raise ValueError("edge %d: the gate range leaves no room for pulses (margins %d/%d "
                             "codes); widen limits.gate_range" % (e, down, up))

    def safe_us(self, e, up, g, over_us):
        """The longest pulse (us asked) that keeps pulse gate ``e`` within its hard
        bounds from read-back ``g`` (the highest twin's for a charge, the lowest's for a
        discharge), for any RC down to ``RC_TOL`` below nominal: ``g`` relaxes toward
        the rail exponentially, so the bound is exact. 0 when none is. Floats: not for
        the learning step."""
        rcf = self.rc_us * (1.0 - RC_TOL)
        if up:
            rail = self.g_charge
            top = self.hard_hi[e] - NOISE
            if g >= top or rail <= top:
                return 0
            t = rcf * math.log((rail - g) / (rail - top))
        else:
            bot = self.hard_lo[e] + NOISE
            if g <= bot or bot <= 0:
                return 0
            t = rcf * math.log(g / bot)
        t = int(t) - over_us - 2
        return t if t > 0 else 0

    def clamp(self, e, value):
        """``value`` moved to the nearest value edge ``e`` may be set to."""
        if value < self.lo[e]:
            return self.lo[e]
        if value > self.hi[e]:
            return self.hi[e]
        return value

    def allowed(self, e, value):
        """True when edge ``e`` may be set to ``value`` (tap or gate code)."""
        return self.kind[e] != 0 and self.lo[e] <= value <= self.hi[e]

    def check(self, out, pos):
        """True when every actuation in ``out`` keeps its edge within bounds."""
        for e in range(len(out)):
            if not self._edge_ok(out, pos, e):
                return False
        return True

    def _edge_ok(self, out, pos, e):
        return not out[e] or self._ok(e, out[e], pos[e])

    def _ok(self, e, q, p):
        k = self.kind[e]
        if k == 2:
            return self.pulse_ok(e, q, p)
        return k != 0 and self.lo[e] <= p + q <= self.hi[e]

    def pulse_ok(self, e, q, g):
        """True when a pulse of ``q`` us (> 0 charge) from gate code ``g`` stays within the
        planning bounds by the rule's own linear model (the same integer rate, so a pulse
        the rule cut to the room left passes, and one that is 1 us longer does not)."""
        if q > 0:
            span = self.g_charge - g
            room = self.hi[e] - g
        else:
            span = g
            room = g - self.lo[e]
            q = -q
        if room < 0 or span <= 0:
            return q == 0
        rate = (span << 16) // self.rc_us
        return rate <= 0 or q <= (room << 16) // rate

    def nodes_ok(self, codes):
        """True when every measured node code lies within the node-voltage limit."""
        vmax = self.vn_code
        for k in range(len(codes)):
            if codes[k] > vmax:
                return False
        return True
