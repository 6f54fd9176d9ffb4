"""Pulse-charged gates outside the learning step: set one to a value, keep every one
inside its range as it leaks, and the self-test's pulse pair — each pulse bounded on
every network's read-back (the twins of a twin board drift apart).

``PulseGates(hal, limits, rule, nets, pulse_over, leak_codes)`` also moves the pulse
gates' planning bounds (``limits`` is ``safety.Limits``, ``rule`` the learning rule)
inwards from the description's, which it keeps as hard bounds. Imported after the board
is wired (a 176 KB heap has no room for it while the description is read). Uses floats
and ``math.log``: not for the locked learning step (``learn.py`` has its own integer
checks).
"""

import math
from array import array

from .consts import K_PULSE
from .safety import NOISE, RC_TOL


class PulseGates:
    """Closed-loop moves of the pulse gates through ``hal.move``/``hal.read_gate``."""

    def __init__(self, hal, limits, rule, nets, pulse_over, leak_codes):
        self.hal = hal
        self.lim = limits
        self.nets = nets
        self.over = pulse_over
        self.t_keep = None  # ticks_us of the last keep (App.keep_gates)
        self.hard_lo = array("i", limits.lo)
        self.hard_hi = array("i", limits.hi)
        for e in range(len(limits.kind)):
            if limits.kind[e] == K_PULSE:
                self.margins(e, leak_codes)
                rule.lo[e] = limits.lo[e]
                rule.hi[e] = limits.hi[e]

    def margins(self, e, leak_codes):
        """Move pulse gate ``e``'s planning bounds inwards from its hard bounds.

        The rule plans a pulse with the nominal RC and the time asked, linearly from the
        read-back. A pulse really conducts ``pulse_over`` us longer (its switch-off) plus
        2 us of pulse-to-pulse skew, at the end, where the gate is near the bound; a capacitor
        ``RC_TOL`` faster makes the linear plan short by at most ``t + (1-t) ln(1-t)``
        (t = RC_TOL) of the way to the rail, at a pulse of ``(1-t) ln(1/(1-t))`` RC; the
        read-back is off by ``NOISE``; an idle gate leaks ``leak_codes`` between two
        looks of :meth:`keep`."""
        lim = self.lim
        rcf = lim.rc_us * (1.0 - RC_TOL)
        slack = self.over + 2
        eps = RC_TOL + (1.0 - RC_TOL) * math.log(1.0 - RC_TOL)
        xs = (1.0 - RC_TOL) * math.log(1.0 / (1.0 - RC_TOL))
        lo = self.hard_lo[e]
        hi = self.hard_hi[e]
        g = lim.g_charge
        up = (g - hi) * slack / rcf + eps * (g - lo) + NOISE
        down = lo * slack / rcf + eps * lo / (1.0 - xs) + NOISE + leak_codes
        lim.hi[e] = hi - int(math.ceil(up)) - 1
        lim.lo[e] = lo + int(math.ceil(down)) + 1
        if lim.lo[e] > lim.hi[e]:  # a range narrower than its margins: no pulse is planned
            lim.lo[e] = lim.hi[e] = (lo + hi) // 2

    def twins(self, e):
        """(lowest, highest) read-back code of pulse gate ``e`` over the networks."""
        lo = 1 << 20
        hi = -1
        for net in range(self.nets):
            g = self.hal.read_gate(net, e)
            lo = g if g < lo else lo
            hi = g if g > hi else hi
        return lo, hi

    def steer(self, e, v, by_low=False, force=False):
        """Pulse gate ``e`` to read-back code ``v``: the highest twin's (as read_edges
        reports it), or with ``by_low`` the lowest twin's (to lift a gate that leaked
        below its range). Closed loop: the RC is only nominal (parts spread) and a
        pulse conducts ``pulse_over`` us longer than asked, so one pulse misses
        (repeated put-backs by self_test ratcheted a gate ~17 mV a time). Each pulse
        aims at 90 % of the way, so a faster capacitor does not overshoot ``v``, and is
        cut to what keeps every twin inside the hard bounds (:meth:`safe_us`); the
        last pulse is the shortest one when that lands nearer ``v`` than staying put, or
        with ``force`` (a gate outside its planning range) whenever it is short of ``v``."""
        lim = self.lim
        for _ in range(10):
            g_lo, g_hi = self.twins(e)
            g = g_lo if by_low else g_hi
            if v == g:
                return
            up = v > g
            rail = lim.g_charge if up else 0
            if rail == v or rail == g:
                return
            t = 0.9 * lim.rc_us * math.log((rail - g) / (rail - v))
            ask = int(t + 0.5) - self.over
            if ask < 1:
                if 2 * t <= 1 + self.over and not force:
                    return
                ask = 1
                force = False  # one overshooting pulse at most
            room = self.safe_us(e, up, g_hi if up else g_lo)
            if room < ask:
                ask = room
            if ask < 1:
                return  # a twin is at its hard bound: no pulse this way is safe
            self.hal.move(e, ask if up else -ask)

    def safe_us(self, e, up, g):
        """The longest pulse (us asked) that keeps pulse gate ``e`` within its hard
        bounds from read-back ``g`` (the highest twin's for a charge, the lowest's for a
        discharge), for any RC down to ``RC_TOL`` below nominal: ``g`` relaxes toward
        the rail exponentially, so the bound is exact. 0 when none is. Floats: not for
        the learning step."""
        lim = self.lim
        rcf = lim.rc_us * (1.0 - RC_TOL)
        if up:
            rail = lim.g_charge
            top = self.hard_hi[e] - NOISE
            if g >= top or rail <= top:
                return 0
            t = rcf * math.log((rail - g) / (rail - top))
        else:
            bot = self.hard_lo[e] + NOISE
            if g <= bot or bot <= 0:
                return 0
            t = rcf * math.log(g / bot)
        t = int(t) - self.over - 2
        return t if t > 0 else 0

    def keep(self, lift, feed):
        """Pulse gates leak (and twins drift apart): a gate whose lowest twin is below
        its planning range is lifted ``lift`` codes into it, one whose highest twin is
        above it lowered, so no gate sits (or boots) outside the description's range.
        (Read-back noise aside: a gate within ``NOISE`` codes of its planning range is
        left alone; the shortest pulse moves it ~15 codes.) ``feed`` is called per gate:
        lifting every gate of a board that sat unpowered takes longer than the watchdog's
        timeout. Returns the edges moved."""
        lim = self.lim
        moved = 0
        for e in range(len(lim.kind)):
            if lim.kind[e] != K_PULSE:
                continue
            feed()
            g_lo, g_hi = self.twins(e)
            if g_lo < lim.lo[e] - NOISE:
                self.steer(e, lim.lo[e] + lift, True, True)
                moved += 1
            elif g_hi > lim.hi[e] + NOISE:
                self.steer(e, lim.hi[e] - lift, False, True)
                moved += 1
        return moved

    def self_test(self, e, unchecked):
        """True when a pulse pair moves gate ``e``'s read-back on every network, up then
        down (or down then up); ``e`` goes to ``unchecked`` when no test pulse is safe."""
        lim = self.lim
        hal = self.hal
        # Near the top of its range the gate goes down first: a charge from there
        # could cross the limit (found by the safety campaign: gates to 5.44 V). Each
        # pulse is checked on the twin it could take out: the highest for a charge,
        # the lowest for a discharge.
        g_lo, g_hi = self.twins(e)
        if lim.pulse_ok(e, 50, g_hi):
            q = 50
        elif lim.pulse_ok(e, -50, g_lo):
            q = -50
        else:  # a range narrower than one test pulse: nothing to try safely
            unchecked.append(e)
            return True
        ok = True
        g3 = [0] * self.nets
        for net in range(self.nets):
            g3[net] = hal.read_gate(net, e)
        hal.move(e, q)
        for net in range(self.nets):
            g1 = hal.read_gate(net, e)
            ok = ok and (g1 > g3[net] if q > 0 else g1 < g3[net])
            g3[net] = g1
        g_lo, g_hi = self.twins(e)
        if not (lim.pulse_ok(e, 50, g_hi) if q < 0 else lim.pulse_ok(e, -50, g_lo)):
            return ok  # the way back is left to the put-back's bounded steps
        hal.move(e, -q)
        for net in range(self.nets):
            g2 = hal.read_gate(net, e)
            ok = ok and (g2 < g3[net] if q > 0 else g2 > g3[net])
        return ok
