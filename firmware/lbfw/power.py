"""The board's own power estimate: what each network dissipates, Σ_e I_e·ΔV_e, from its
node readings and edge states through the device models of the description.

Without a current monitor this is the power a board reports (labelled an estimate by the
host). The models are those the emulator's physics uses (``learnboard.physics.devices``):

* transistor edge (gate to ground, the lower channel terminal the source): source
  overdrive ``x = Vg − Vt − min(Va, Vb)``, below the knee ``x0 = 2·sub_slope/ln 10``
  continued as ``x0·exp((x − x0)/x0)`` (the subthreshold tail); ohmic
  ``I = β (x − Vds/2) Vds`` while ``Vds < x``, else saturated ``I = β x²/2``;
* digipot: ``R = r_scale · taper(tap) + r_wiper``; fixed resistor: its ohms.

Per edge and network the parameters are the description's nominal ones until the host
sets calibrated ones (``set_model``: ``vt``/``beta`` per transistor, ``r_scale``/
``r_wiper`` per digipot, as ``learnboard calibrate`` measures them); they live in RAM
only and the host sets them again after a reset.

Floating point, a few hundred operations per network: called between learning steps
(telemetry) and from requests, never inside the allocation-free step.
"""

import math
from array import array

# edge kinds of PowerModel.kind (0: no model, a fixed edge without a resistance)
RES = 1
POT = 2
FET = 3
_LN10 = 2.302585092994046


class PowerModel:
    """Per-edge device models of a ``nets``-network board (``body``: its description)."""

    def __init__(self, body, gate_vpc):
        edges = body["edges"]
        parts = body["parts"]
        n = len(edges)
        nets = body["nets"]
        self.n = n
        self.nets = nets
        self.gate_vpc = gate_vpc
        self.ei = array("H", [ed["a"] for ed in edges])
        self.ej = array("H", [ed["b"] for ed in edges])
        self.kind = bytearray(n)
        self.x0 = array("f", bytes(4 * n))  # transistor knee (V)
        self.lo = array("f", bytes(4 * n))  # pot r_min (Ω); resistor conductance (S)
        self.hi = array("f", bytes(4 * n))  # pot r_max (Ω)
        self.top = array("H", bytes(2 * n))  # pot taps - 1
        self.log = bytearray(n)  # 1: log taper, 0: linear
        self.rb = bytearray(n)  # 1: a pulse gate, its state an oversampled read-back code
        # what the floor of an oversampled mean loses on average (codes; set_oversample)
        self.half = 0.0
        self.part = [None] * n
        # per network and edge (index net * n + e): vt or r_scale, beta or r_wiper
        self.a = array("f", bytes(4 * n * nets))
        self.b = array("f", bytes(4 * n * nets))
        self.calibrated = bytearray(nets)
        for e in range(n):
            ed = edges[e]
            part = parts[ed["p"]] if ed["p"] >= 0 else None
            self.part[e] = part
            if ed["k"] == "t":
                self.kind[e] = FET
                self.x0[e] = 2.0 * part["ss"] / _LN10
                self.rb[e] = 0 if "dac" in ed["d"][0] else 1
            elif ed["k"] == "d":
                self.kind[e] = POT
                self.lo[e] = part["rmin"]
                self.hi[e] = part["rmax"]
                self.top[e] = part["nt"] - 1
                self.log[e] = 1 if part["tp"] == "log" else 0
            elif ed.get("r"):
                self.kind[e] = RES
                self.lo[e] = 1.0 / ed["r"]
        for net in range(nets):
            self.nominal(net)

    def set_oversample(self, n):
        """Readings average ``n`` ADC samples by integer division (``hal.Hal._avg``): a
        read-back code is then on average (n − 1)/2n below the mean it stands for (a
        gate at 1.3 mV per code, ~1.5 % of a subthreshold edge's power at n = 16)."""
        self.half = (n - 1) / (2.0 * n)

    def nominal(self, net):
        """Network ``net`` back to the description's nominal parts."""
        for e in range(self.n):
            part = self.part[e]
            j = net * self.n + e
            k = self.kind[e]
            if k == FET:
                self.a[j] = part["vt"]
                self.b[j] = part["beta"]
            elif k == POT:
                self.a[j] = 1.0
                self.b[j] = part["rw"]
        self.calibrated[net] = 0

    def set(self, net, e, a, b):
        """Calibrated parameters of edge ``e`` on network ``net`` (checked by the caller)."""
        j = net * self.n + e
        self.a[j] = a
        self.b[j] = b
        self.calibrated[net] = 1

    def power(self, net, codes, vpc, state):
        """Watts dissipated in network ``net``: node ``codes`` (ADC codes, ``vpc`` volts
        per code) and edge ``state`` (taps, or gate codes of ``gate_vpc`` volts each)."""
        p = 0.0
        ei = self.ei
        ej = self.ej
        for e in range(self.n):
            va = codes[ei[e]] * vpc
            vb = codes[ej[e]] * vpc
            p += self.edge(net, e, va, vb, state[e])
        return p

    def edge(self, net, e, va, vb, s):
        """Watts in edge ``e`` of network ``net`` at terminal volts ``va``, ``vb``."""
        k = self.kind[e]
        j = net * self.n + e
        if k == FET:
            if va < vb:
                lo = va
                vds = vb - va
            else:
                lo = vb
                vds = va - vb
            x = (s + self.half * self.rb[e]) * self.gate_vpc - self.a[j] - lo
            x0 = self.x0[e]
            if x < x0:  # the subthreshold tail (exp argument <= 0 here)
                x = x0 * math.exp((x - x0) / x0)
            if vds < x:
                return self.b[j] * (x - 0.5 * vds) * vds * vds
            return 0.5 * self.b[j] * x * x * vds
        dv = va - vb
        if k == POT:
            t = s / self.top[e]
            if self.log[e]:
                r = self.lo[e] * (self.hi[e] / self.lo[e]) ** t
            else:
                r = self.lo[e] + (self.hi[e] - self.lo[e]) * t
            return dv * dv / (self.a[j] * r + self.b[j])
        if k == RES:
            return dv * dv * self.lo[e]
        return 0.0
