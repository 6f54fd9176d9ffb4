"""The board application: wires everything from ``board.json``, answers the protocol's
commands (``msgs``) and runs the main loop (poll the host, run learning steps between
polls, send telemetry every ``tlm_every`` steps, park on host silence).

``App(body, desc_hash, machine, clock, port)`` builds the hardware layer from the
description; tests may pass ``hal=`` an object with the seam methods of ``hal.Hal``.
``desc.load_description(path)`` reads and checks ``board.json``. See ``docs/firmware.md``.

Watchdog, maintenance boot and ``F_WATCHDOG``: see ``budget.py`` and ``docs/firmware.md``.
"""

import gc

try:
    from micropython import heap_lock, heap_unlock
except ImportError:  # CPython
    heap_lock = heap_unlock = None

from . import budget, consts, desc, learn, msgs, power, rule, safety, server
from . import hal as hal_mod
from .server import Fail

# Kept on flash by `learnboard calibrate`; hello reports its hash so a host fetches it only
# when there is one (the fetch goes through the REPL, which has no framing).
CALIBRATION_FILE = "calibration.json"

VERSION = "0.1.0"
MAX_EXAMPLES = 64
# How often (board ms) idle and training alike, pulse gates are read on every network and
# any that leaked (or drifted) out of its planning range is put back in (keep_gates).
KEEP_MS = 1000
KEEP_LIFT = 4  # codes into the range a kept gate is put: a few KEEP_MS of leakage
_MODES = ("cl", "gen1", "desync")
_PARAMS = ("alpha", "eta", "lam", "oversample", "settle_us", "pulse_us", "mode", "p_update",
           "seed", "order", "tlm_every", "tlm_nodes", "tlm_edges", "host_timeout_ms", "batch", "null_every")


_FLOATS = ("alpha", "eta", "lam", "p_update")
_INTS = ("oversample", "settle_us", "pulse_us", "seed", "tlm_every", "tlm_nodes", "tlm_edges",
         "host_timeout_ms", "batch", "null_every")



def _no_feed():
    pass


def _note(path):
    f = open(path, "w")
    f.write("1")
    f.close()


def _short(v):
    """A value for an error message (a reply's message has at most 120 characters)."""
    r = repr(v)
    return r if len(r) <= 24 else r[:21] + "..."


def _check(cond, code, message, field=None, edge=None):
    """Raise ``Fail`` unless ``cond``; ``field``/``edge`` name the argument and edge at fault."""
    if not cond:
        raise Fail(code, message, field, edge)


def unique_id(machine):
    """The MCU's unique id (on the RP2040 the flash chip's 64-bit id) as lower-case hex,
    built once at boot: the host tells boards apart by it, whatever port they are on.
    None when this ``machine`` has no ``unique_id`` (a port without one)."""
    fn = getattr(machine, "unique_id", None)
    if fn is None:
        return None
    return "".join(["%02x" % b for b in fn()])


class App:
    """The firmware application; ``tick()`` is one pass of the main loop."""

    def __init__(self, body, desc_hash, machine, clock, port, hal=None,
                 max_examples=MAX_EXAMPLES, wdt=None, wdt_ms=0, boot_flt=0, repl_flag=None,
                 reset_note=None, calibration_file=CALIBRATION_FILE):
        self.m = machine
        self.cal_file = calibration_file  # None: a board without a filesystem
        self.wdt = wdt
        self.wdt_ms = wdt_ms if wdt is not None else 0
        self.boot_flt = boot_flt  # e.g. F_WATCHDOG: how this boot came about
        self.repl_flag = repl_flag
        self.reset_note = reset_note
        self.clock = clock
        self.port = port
        self.name = body["name"]
        self.hash = desc_hash
        self.hal = hal if hal is not None else hal_mod.Hal(body, machine, clock)
        self._feed = wdt.feed if wdt is not None else _no_feed
        if wdt is not None:  # fed inside long work too (digipot homing in _build)
            self.hal.feed = wdt.feed
        self._build(body, max_examples)
        gc.collect()  # wiring's garbage, before the server's buffers and the rule's tables
        self.training = False
        self.parked = False
        self.running = True
        self.step_n = 0
        self.target = 0
        self.t_boot_ms = clock.ticks_ms()  # uptime in ms: ticks_us wraps after 9 minutes
        self.dt_sum = 0
        self.dt_n = 0
        self.dtmax = 0
        self.tlm_count = 0
        self.srv = server.Server(port, self._handlers(), info={
            "fw": VERSION, "board": self.name, "desc_hash": desc_hash,
            "uid": unique_id(machine),
            "caps": ["train", "infer", "self_test"] + (
                ["power_sense"] if getattr(self.hal, "sense", None) is not None else []) + (
                ["wdt"] if wdt is not None else []),
            "flt": boot_flt,
            "limits": {"max_examples": max_examples, "n_edges": self.n_edges,
                       "n_nodes": self.n_nodes, "vn": self.vn, "ie": self.ie}},
            ticks_ms=clock.ticks_ms)
        self.set_params({})
        # pulse-gate control (gates.PulseGates): None without pulse gates, 0 until the
        # main loop's first pass loads it (one attribute: each more grew this object's
        # dict by ~1 kB, more than a 176 KB heap had left at boot)
        self.pg = None
        for k in self.limits.kind:  # (``in`` on a bytearray is not in MicroPython)
            if k == consts.K_PULSE:
                self.pg = 0
        gc.collect()

    # -- construction -----------------------------------------------------------------

    def _build(self, body, max_examples):
        hal = self.hal
        self.n_nodes = len(body["nodes"])
        self.n_edges = len(body["edges"])
        self.nets = body["nets"]
        adc = body["adc"]
        self.budget = budget.Budget(body, max_examples)
        self.adc_max = (1 << adc["bits"]) - 1
        gain = body["mux"][body["nrd"][0][body["outs"][0]["a"]][0]]["g"]
        self.vpc = adc["vref"] / self.adc_max / gain  # node volts per code
        lim = body["lim"]
        self.vn = lim["vn"]
        self.ie = lim["ie"]
        self.limits = safety.Limits(self.n_edges, int(self.vn * 1.05 / self.vpc) + 8)
        self._build_ports(body)
        self._build_edges(body, lim)
        self.learner = learn.Learner(
            hal, self.rule, self.limits, self.n_nodes, self.nets, self.in_lines,
            self.out_lines, [o["a"] for o in body["outs"]], self.fixed, self.clamp_k16,
            self.clamp_max, max_examples, self.out_node_b, self.out_lines_b)
        self.learner.pos[:] = self.pos0
        init_taps = getattr(hal, "init_taps", None)
        if init_taps is not None:  # digipots: homed or written so the taps are where pos0 says
            init_taps(self.pos0)
        for e in range(self.n_edges):  # DAC gates power up at 0 V: to where pos0 says
            if self.limits.kind[e] == consts.K_DAC:
                hal.set_dac_gate(e, self.pos0[e])
        self.learn_defaults = body["learn"]

    def _build_ports(self, body):
        hal = self.hal
        self.in_lines = []
        self.fixed = []
        self.in_vpc = 1.0
        for p in body["ins"]:
            lines = tuple(hal.vline(x) if x is not None else None for x in p["d"])
            vpc = hal.volts_per_code(p["d"][0])
            # a driver's highest code is the one at or below the node limit as well as
            # its full scale: a rounded-up code would drive its node above the limit
            top = min(hal.max_code(p["d"][0]), int(self.vn / vpc))
            if p["fx"] is not None:
                # full scale (e.g. 0.45 V on an 8-bit 0.45 V DAC) rounds to 2**bits: clamp,
                # or the DAC word overflows and the bias reads 0 V (found by hil_tests wiring)
                for line in lines:
                    self.fixed.append((line, min(top, int(p["fx"] / vpc + 0.5))))
            else:
                self.in_lines.append(lines)
                self.in_vpc = vpc
                self.in_max = top
        self.fixed = tuple(self.fixed)
        self.in_lines = tuple(self.in_lines)
        self.out_lines = []
        self.out_lines_b = []
        self.out_node_b = []
        self.clamp_k16 = []
        for p in body["outs"]:
            lines = tuple(hal.vline(x) if x is not None else None for x in p["d"])
            drv = p["d"][-1]
            self.out_lines.append(lines)
            # a differential output whose second node is driven too: clamped symmetrically
            # about the free common mode (a fixed common-mode voltage is not supported)
            pair = p["b"] is not None and p["b"] != body["gnd"] and bool(p["db"])
            if pair and p.get("cm") is not None:
                raise ValueError("output %s: a fixed common-mode voltage (common) is not "
                                 "supported by this firmware; remove it to clamp the pair "
                                 "about its free common mode" % p["n"])
            if pair and p["db"][-1] is not None and hal.volts_per_code(p["db"][-1]) != hal.volts_per_code(drv):
                raise ValueError("output %s: clamp and clamp_b need the same volts per code"
                                 % p["n"])
            self.out_node_b.append(p["b"] if pair else -1)
            self.out_lines_b.append(tuple(hal.vline(x) if x is not None else None
                                          for x in p["db"]) if pair else ())
            self.clamp_k16.append(int(self.vpc / hal.volts_per_code(drv) * 65536 + 0.5))
            self.clamp_max = min(hal.max_code(drv), int(self.vn / hal.volts_per_code(drv)))
        self.out_lines = tuple(self.out_lines)
        self.out_lines_b = tuple(self.out_lines_b)
        self.out_node = [p["a"] for p in body["outs"]]
        # nodes held by a driver (or ground) per network while outputs float on single
        # boards: an edge between two of them shows no drop change (self_test)
        self.held = []
        for net in range(body["nets"]):
            h = {body["gnd"]}
            for p in body["ins"]:
                h.add(p["a"])
                if p["db"]:
                    h.add(p["b"])
            if body["nets"] > 1:
                for p in body["outs"]:
                    if p["d"][net] is not None:
                        h.add(p["a"])
                        if p["db"]:
                            h.add(p["b"])
            self.held.append(h)

    def _build_edges(self, body, lim):
        from array import array
        n = self.n_edges
        parts = body["parts"]
        gates = body["gates"]
        models = [array("f", [0.0])]
        pmodel = {}
        ei, ej, kind, model = [], [], [], []
        self.part = [None] * n
        self.gate_vpc = 1.0
        self.pos0 = array("i", bytes(4 * n))
        for e, ed in enumerate(body["edges"]):
            ei.append(ed["a"])
            ej.append(ed["b"])
            part = parts[ed["p"]] if ed["p"] >= 0 else None
            self.part[e] = part
            if ed["k"] == "d":
                if ed["p"] not in pmodel:
                    pmodel[ed["p"]] = len(models)
                    tp = "log" if part["tp"] == "log" else "lin"
                    models.append(rule.pot_gains(part["nt"], part["rmin"], part["rmax"], tp))
                kind.append(rule.POT)
                model.append(pmodel[ed["p"]])
                self.limits.pot_bounds(e, part, lim, lim["taps"])
                self.pos0[e] = (self.limits.lo[e] + self.limits.hi[e]) // 2
            elif ed["k"] == "t":
                pulse = gates["drv"] == "pulse"
                if pulse:  # a pulse gate's state is its read-back code
                    g = body["mux"][body["grd"][0][e][0]]["g"]
                    self.gate_vpc = body["adc"]["vref"] / self.adc_max / g
                else:  # a DAC gate's is its DAC code (the gate settles to the DAC's volts;
                    # the description's check makes every gate DAC's volts per code equal)
                    self.gate_vpc = self.hal.volts_per_code(ed["d"][0]["dac"])
                if "g" not in pmodel:
                    pmodel["g"] = len(models)
                    models.append(rule.gate_gains(self.gate_vpc))
                kind.append(rule.PULSE if pulse else rule.DAC)
                model.append(pmodel["g"])
                self.limits.gate_bounds(e, part, lim, self.gate_vpc, consts.K_PULSE if pulse else consts.K_DAC)
                if not pulse:  # and no DAC code beyond full scale
                    top = self.hal.max_code(ed["d"][0]["dac"])
                    self.limits.hi[e] = min(self.limits.hi[e], top)
                self.limits.rc_us = max(16, int(part["cg"] * part["rg"] * 1e6))
                self.pos0[e] = (self.limits.lo[e] + self.limits.hi[e]) // 2
            else:  # a fixed edge: the rule never moves it (limits.kind stays consts.K_FIXED)
                kind.append(rule.POT)
                model.append(0)
        lo = self.limits.lo
        hi = self.limits.hi
        self.pulse_over = 0
        if gates is not None:
            self.limits.g_charge = min(16383, int(gates["rv"] / self.gate_vpc))
            over = getattr(self.hal, "pulse_overhead_us", None)
            self.pulse_over = over() if over is not None else 0
        self.rule = rule.make_rule(ei, ej, kind, model, models, lo, hi, vmax=self.adc_max)
        self.pm = power.PowerModel(body, self.gate_vpc)
        self.pwr_f = self.pwr_c = 0.0  # the parts of the last power() (W)
        # network 1's gate codes for its power at infer (twin boards with pulse gates)
        self.g1 = array("i", bytes(4 * n)) if self.nets > 1 and gates is not None else None

    # -- parameters ---------------------------------------------------------------------

    def _defaults(self):
        d = self.learn_defaults
        return {"alpha": d["alpha"], "eta": d["eta"], "lam": d["lam"],
                "oversample": getattr(self.hal, "os", 1),
                "settle_us": getattr(self.hal, "out_settle_us", 0),
                "pulse_us": 100, "mode": "gen1" if d["rule"] == "sign" else "cl",
                "p_update": 1.0, "seed": 1, "order": "seq", "tlm_every": 10,
                "tlm_nodes": 0, "tlm_edges": 0, "host_timeout_ms": 10000, "batch": 0,
                "null_every": 0}

    def get_params(self, args):
        names = args.get("names") or _PARAMS
        _check(type(names) in (list, tuple), consts.E_BAD_ARGS, "names must be an array of parameter names",
               "names")
        out = {}
        for k in names:
            _check(type(k) is str and k in self.params, consts.E_BAD_ARGS, "unknown parameter: %s" % _short(k),
                   k if type(k) is str else "names")
            out[k] = self.params[k]
        return out

    def set_params(self, args):
        """All or nothing: validate every value, then apply (allocates; not in the loop)."""
        p = dict(self.params) if hasattr(self, "params") else self._defaults()
        for k in args:
            _check(k in p, consts.E_BAD_ARGS, "unknown parameter: %s" % _short(k), k)
            p[k] = args[k]
        self._validate(p)
        self._apply(p)
        self.params = p
        return {k: p[k] for k in args}

    def _validate(self, p):
        # types first: a string or an inf must not reach a comparison or the rule's tables
        # (encode(inf) never returns); every message names the parameter and its value
        for k in _FLOATS:
            v = p[k]
            _check(type(v) in (int, float) and -1e30 < v < 1e30, consts.E_BAD_ARGS,
                   "%s = %s: must be a finite number" % (k, _short(v)), k)
        for k in _INTS:
            _check(type(p[k]) is int, consts.E_BAD_ARGS, "%s = %s: must be an int" % (k, _short(p[k])), k)
        rng = consts.E_OUT_OF_RANGE
        _check(p["alpha"] >= 0.0, rng, "alpha (learning rate) = %s must be >= 0" % p["alpha"], "alpha")
        _check(0.0 < p["eta"] <= 1.0, rng, "eta (nudge) = %s must lie in (0, 1]" % p["eta"], "eta")
        _check(0.0 <= p["lam"] <= 1.0, rng, "lam = %s must lie in [0, 1]" % p["lam"], "lam")
        _check(1 <= p["oversample"] <= 256, rng, "oversample = %d must lie in 1..256" % p["oversample"],
               "oversample")
        _check(0 <= p["settle_us"] <= 1000000, rng, "settle_us = %d must lie in 0..1000000" % p["settle_us"],
               "settle_us")
        _check(1 <= p["pulse_us"] <= 8191, rng, "pulse_us = %d must lie in 1..8191" % p["pulse_us"], "pulse_us")
        _check(p["mode"] in _MODES, rng, "mode = %s must be cl, gen1 or desync" % _short(p["mode"]), "mode")
        _check(0.0 <= p["p_update"] <= 1.0, rng, "p_update = %s must lie in [0, 1]" % p["p_update"], "p_update")
        _check(p["order"] in ("seq", "shuffle"), rng, "order = %s must be seq or shuffle" % _short(p["order"]), "order")
        for k in ("tlm_every", "tlm_nodes", "tlm_edges", "host_timeout_ms", "batch", "null_every"):
            _check(p[k] >= 0, rng, "%s = %d must be an int >= 0" % (k, p[k]), k)
        _check(p["batch"] <= self.learner.max_examples, rng,
               "batch = %d exceeds max_examples %d" % (p["batch"], self.learner.max_examples), "batch")
        if self.wdt_ms:
            self.budget.check(p, self.wdt_ms)

    def _apply(self, p):
        lr = self.learner
        n = p["batch"] or max(1, lr.n_ex)
        # The offset is a sum over a batch: measured afresh when the batch or the period
        # changes (and after an upload), not at every train: a host that trains in chunks
        # keeps one measurement every null_every steps across them.
        if lr.batch != n or lr.null_every != p["null_every"]:
            lr.clear_null()
        lr.batch = n
        lr.null_every = p["null_every"]
        lr.nudge16 = int(p["eta"] * 65536 + 0.5)
        lr.shuffle = p["order"] == "shuffle"
        lr.rng = (p["seed"] & 0x3FFFFFFF) or 1
        h = self.hal
        if hasattr(h, "os"):
            h.os = p["oversample"]
            self.pm.set_oversample(h.os)
        if hasattr(h, "out_settle_us"):
            h.out_settle_us = p["settle_us"]
        lim = self.limits
        self.rule.set_params(
            alpha=p["alpha"], eta=p["eta"], lam=p["lam"], volts_per_code=self.vpc,
            n_examples=n, mode=rule.SIGN if p["mode"] == "gen1" else rule.ACCUM,
            p=p["p_update"] if p["mode"] == "desync" else 1.0, seed=p["seed"],
            max_us=p["pulse_us"], rc_us=min(65535, lim.rc_us), g_charge=lim.g_charge,
            sign_us=p["pulse_us"])

    # -- handlers -----------------------------------------------------------------------

    def _handlers(self):
        return {
            msgs.STATUS: self.status, msgs.GET_PARAMS: self.get_params,
            msgs.SET_PARAMS: self.set_params, msgs.UPLOAD_EXAMPLES: self.upload_examples,
            msgs.TRAIN: self.train, msgs.STOP: self.stop, msgs.INFER: self.infer,
            msgs.READ_EDGES: self.read_edges, msgs.WRITE_EDGES: self.write_edges,
            msgs.MEASURE: self.measure, msgs.SELF_TEST: self.self_test,
            msgs.PARK: self.park_cmd, msgs.REPL: self.repl, msgs.RESET: self.reset,
            msgs.HELLO: self.hello, msgs.SET_MODEL: self.set_model,
        }

    def hello(self, args):
        """hello's board part beyond ``info``: the scales of telemetry's codes (built on
        demand: n_edges floats kept for the whole boot would cost heap)."""
        return {"scale": {"v": self.vpc,
                          "k": [self._edge_scale(e) for e in range(self.n_edges)]},
                "cal": desc.file_sha256(self.cal_file) if self.cal_file else None}

    def _idle(self):
        """Refuse while training; before anything that moves an edge, the pulse gates'
        planning margins are in place (the main loop's first pass sets them; this is
        for an App driven without it)."""
        _check(not self.training, consts.E_BUSY, "training: send stop first")
        if self.pg is not None:
            self._gates()

    def status(self, args):
        state = "training" if self.training else ("parked" if self.parked else "idle")
        up = (self.clock.ticks_ms() - self.t_boot_ms) & 0x3FFFFFFF  # wraps at 2**30 ms, 12.4 days
        return {"state": state, "step": self.step_n, "target": self.target,
                "examples": self.learner.n_ex, "flt": self.faults(), "uptime_ms": up}

    def faults(self):
        return self.learner.flt | self.boot_flt | (consts.F_PARKED if self.parked else 0)

    def _in_codes(self, xs, field="x"):
        _check(type(xs) in (list, tuple) and len(xs) == len(self.in_lines), consts.E_BAD_ARGS,
               "x needs %d input voltages" % len(self.in_lines), field)
        for v in xs:
            _check(type(v) in (int, float), consts.E_BAD_ARGS, "input %s is not a number" % _short(v), field)
            _check(0.0 <= v <= self.vn, consts.E_LIMIT,
                   "input %s V outside 0..%s V (node limit)" % (v, self.vn), field)
        return [min(self.in_max, int(v / self.in_vpc + 0.5)) for v in xs]

    def upload_examples(self, args):
        self._idle()
        lr = self.learner
        n_ex = 0 if args.get("clear") else lr.n_ex  # cleared only once all is checked
        start = args.get("start", n_ex)
        xs = args.get("x", [])
        ys = args.get("y", [])
        _check(type(start) is int and 0 <= start <= n_ex, consts.E_OUT_OF_RANGE,
               "start = %s must lie in 0..%d" % (_short(start), n_ex), "start")
        _check(type(xs) in (list, tuple) and type(ys) in (list, tuple), consts.E_BAD_ARGS,
               "x and y must be arrays of examples", "y" if type(xs) in (list, tuple) else "x")
        _check(len(xs) == len(ys), consts.E_BAD_ARGS, "x and y need the same length", "y")
        _check(start + len(xs) <= lr.max_examples, consts.E_OUT_OF_RANGE,
               "at most %d examples fit on the board" % lr.max_examples, "x")
        rows = []
        for j in range(len(xs)):
            y = ys[j]
            _check(type(y) in (list, tuple) and len(y) == lr.n_out, consts.E_BAD_ARGS,
                   "y needs %d targets" % lr.n_out, "y")
            rows.append((self._in_codes(xs[j]), self._out_codes(y)))
        for j, (xc, yc) in enumerate(rows):
            i = start + j
            for k in range(lr.n_in):
                lr.ex_in[i * lr.n_in + k] = xc[k]
            for k in range(lr.n_out):
                lr.ex_out[i * lr.n_out + k] = yc[k]
        lr.n_ex = max(n_ex, start + len(xs))
        lr.cursor = 0
        lr.clear_null()  # other examples: other sums at zero nudge
        self._apply(self.params)
        return {"count": lr.n_ex}

    def train(self, args):
        self._idle()
        _check(self.learner.n_ex > 0, consts.E_NOT_READY, "no examples: upload_examples first")
        steps = args.get("steps", 0)
        _check(type(steps) is int and steps >= 0, consts.E_BAD_ARGS,
               "steps = %s: must be an int >= 0" % _short(steps), "steps")
        if "every" in args:  # checked here: a refusal names this request's argument
            every = args["every"]
            _check(type(every) is int and every >= 0, consts.E_BAD_ARGS,
                   "every = %s: must be an int >= 0" % _short(every), "every")
            self.set_params({"tlm_every": every})
        self._apply(self.params)
        self.step_n = 0
        self.target = steps
        self.parked = False
        self.learner.flt = 0
        self.learner.reset_stats()
        self.dt_sum = self.dt_n = self.dtmax = 0
        self.training = True
        return {"step": 0, "target": steps}

    def stop(self, args):
        self.training = False
        return {"step": self.step_n}

    def _read_free(self):
        self.hal.settle()
        self.hal.read_nodes(0, self.learner.vf)
        return self.learner.vf

    def infer(self, args):
        """Inputs applied on every network, outputs and power read. With ``y`` (the
        targets), a twin board's clamped network is driven as a learning step drives it
        (each output nudged from the free one toward its target by ``eta``) and its power
        read at its own gates; without, its clamps stay where they are and its power is
        taken at network 0's gates (no gate reads)."""
        self._idle()
        _check("x" in args, consts.E_BAD_ARGS, "x is missing: the input voltages", "x")
        codes = self._in_codes(args["x"])
        ys = args.get("y")
        if ys is not None:
            ys = self._out_codes(ys)
        lr = self.learner
        for k in range(lr.n_in):
            for line in lr.in_lines[k]:
                if line is not None:
                    self.hal.drive(line, codes[k])
        for line, code in lr.fixed:
            self.hal.drive(line, code)
        if self.nets == 1:
            self.hal.switch(False)
        vf = self._read_free()
        out = {"y": [(vf[lr.out_node[k]] - (vf[lr.out_node_b[k]] if lr.out_node_b[k] >= 0
                                              else 0)) * self.vpc for k in range(lr.n_out)]}
        gates1 = None
        if self.nets > 1:
            if ys is not None:
                for k in range(lr.n_out):
                    lr._nudge(k, ys[k], False)
                self.hal.settle()
            self.hal.read_nodes(1, lr.vc)
            # with targets (an evaluation), the clamped network's own gates (the twins
            # drift apart); without (calibration drives inputs by the hundred), network 0's
            if ys is not None and self.g1 is not None:
                gates1 = self.g1
                for e in range(self.n_edges):
                    gates1[e] = lr.pos[e]
                self.hal.read_gates(gates1, 1)
        out["pwr"] = self.power(gates1)
        out["pwr_f"] = self.pwr_f
        out["pwr_c"] = self.pwr_c if self.nets > 1 else None
        out["model"] = "calibrated" if self.pm.calibrated[0] else "nominal"
        pm = self.measured_power()
        if pm is not None:
            out["pwr_m"] = pm
        return out

    def _out_codes(self, ys):
        """Target node codes of ``ys`` (volts, one per output), checked."""
        lr = self.learner
        _check(type(ys) in (list, tuple) and len(ys) == lr.n_out, consts.E_BAD_ARGS,
               "y needs %d target voltages" % lr.n_out, "y")
        codes = []
        for k in range(len(ys)):
            v = ys[k]
            _check(type(v) in (int, float), consts.E_BAD_ARGS, "target %s is not a number" % _short(v), "y")
            lo = -self.vn if lr.out_node_b[k] >= 0 else 0.0  # a difference may be negative
            _check(lo <= v <= self.vn, consts.E_LIMIT,
                   "target %s V outside %s..%s V (node limit)" % (v, lo, self.vn), "y")
            codes.append(int(v / self.vpc + (0.5 if v >= 0 else -0.5)))
        return codes

    def measured_power(self):
        """Power (W) from the board's current monitor, None without one."""
        rp = getattr(self.hal, "read_power", None)
        return rp() if rp is not None else None

    def power(self, gates1=None):
        """Total power (W) at the last node readings through the device models
        (``power.PowerModel``): the free network's (``vf`` at its gates) into ``pwr_f``;
        on a twin board the clamped network's (``vc`` at ``gates1``, or at network 0's
        gates when those were not read) into ``pwr_c``. Floats: call between steps."""
        lr = self.learner
        pm = self.pm
        self.pwr_f = pm.power(0, lr.vf, self.vpc, lr.pos)
        self.pwr_c = pm.power(1, lr.vc, self.vpc, lr.pos if gates1 is None else gates1) \
            if self.nets > 1 else 0.0
        return self.pwr_f + self.pwr_c

    def set_model(self, args):
        """Calibrated device parameters for network ``net`` from edge ``start`` on:
        ``vt``/``beta`` per transistor, ``r_scale``/``r_wiper`` per digipot (an edge of
        the other kind takes any value there, e.g. nil); ``nominal`` true puts the
        description's back. All are checked before any is set."""
        net = args.get("net", 0)
        _check(type(net) is int and 0 <= net < self.nets, consts.E_OUT_OF_RANGE,
               "net = %s: the board has networks 0..%d" % (_short(net), self.nets - 1), "net")
        if args.get("nominal"):
            self.pm.nominal(net)
            return {"net": net, "count": 0, "model": "nominal"}
        start = args.get("start", 0)
        _check(type(start) is int and 0 <= start < self.n_edges, consts.E_OUT_OF_RANGE,
               "start = %s: edges are 0..%d" % (_short(start), self.n_edges - 1), "start")
        rows = []
        for e in range(start, self.n_edges):
            k = self.pm.kind[e]
            if k == power.FET:
                lim = ("vt", "beta", -5.0, 5.0, 0.0, 1.0)  # V; A/V^2
            elif k == power.POT:
                lim = ("r_scale", "r_wiper", 0.25, 4.0, -1e-9, 1e5)  # relative; ohm
            else:
                continue
            a = args.get(lim[0])
            b = args.get(lim[1])
            _check(type(a) in (list, tuple) and type(b) in (list, tuple) and len(a) == len(b),
                   consts.E_BAD_ARGS, "%s and %s must be arrays of the same length (from edge start)"
                   % lim[:2], lim[0] if type(a) not in (list, tuple) else lim[1])
            j = e - start
            if j >= len(a):
                break
            for v, name, lo, hi in ((a[j], lim[0], lim[2], lim[3]), (b[j], lim[1], lim[4], lim[5])):
                _check(type(v) in (int, float) and lo < v < hi, consts.E_OUT_OF_RANGE,
                       "edge %d: %s = %s outside %s..%s" % (e, name, _short(v), lo, hi), name, e)
            rows.append((e, a[j], b[j]))
        for e, a, b in rows:
            self.pm.set(net, e, a, b)
        return {"net": net, "count": len(rows), "model": "calibrated" if rows else "nominal"}

    def _edge_value(self, e):
        k = self.limits.kind[e]
        s = self.learner.pos[e]
        return s if k == consts.K_POT or k == consts.K_FIXED else s * self.gate_vpc

    def _edge_scale(self, e):
        """Volts per code of edge ``e``'s state as telemetry sends it; 0: a tap count."""
        k = self.limits.kind[e]
        return 0.0 if k == consts.K_POT or k == consts.K_FIXED else self.gate_vpc

    def read_edges(self, args):
        start = args.get("start", 0)
        _check(type(start) is int, consts.E_BAD_ARGS, "start = %s: must be an int" % _short(start), "start")
        count = args.get("count", self.n_edges - start)
        _check(type(count) is int, consts.E_BAD_ARGS, "count = %s: must be an int" % _short(count), "count")
        _check(0 <= start and count >= 0 and start + count <= self.n_edges, consts.E_OUT_OF_RANGE,
               "edges %d..%d do not exist" % (start, start + count - 1),
               "count" if 0 <= start < self.n_edges else "start")
        if not self.training:
            self.hal.read_gates(self.learner.pos)
        return {"start": start, "k": [self._edge_value(e) for e in range(start, start + count)]}

    def write_edges(self, args):
        """Checks every value first; on any error nothing moves. With ``clamp`` true, a
        value outside an edge's safe range is set to the nearest safe value instead of
        refused (a restore of states that leaked out of range since), and the reply's
        ``clamped`` lists those edges."""
        self._idle()
        start = args.get("start", 0)
        ks = args.get("k", [])
        clamp = args.get("clamp", False)
        _check(clamp is True or clamp is False, consts.E_BAD_ARGS,
               "clamp = %s: must be true or false" % _short(clamp), "clamp")
        _check(type(start) is int and type(ks) in (list, tuple), consts.E_BAD_ARGS,
               "start must be an int and k an array of edge states", "k" if type(start) is int else "start")
        _check(0 <= start and start + len(ks) <= self.n_edges, consts.E_OUT_OF_RANGE,
               "edges %d..%d do not exist" % (start, start + len(ks) - 1),
               "k" if 0 <= start < self.n_edges else "start")
        lim = self.limits
        targets = []
        clamped = []
        for j in range(len(ks)):
            e = start + j
            k = lim.kind[e]
            gate = k == consts.K_PULSE or k == consts.K_DAC
            _check(type(ks[j]) is int if k == consts.K_POT else
                   type(ks[j]) in (int, float) and -1e30 < ks[j] < 1e30, consts.E_BAD_ARGS,
                   "edge %d: %s is not a %s" % (e, _short(ks[j]), "tap (int)" if k == consts.K_POT
                                                 else "finite number"), "k", e)
            v = int(ks[j] / self.gate_vpc + 0.5) if gate else ks[j]
            if clamp and k != consts.K_FIXED and not lim.allowed(e, v):
                v = lim.clamp(e, v)
                clamped.append(e)
            _check(k == consts.K_FIXED or lim.allowed(e, v), consts.E_LIMIT,
                   "edge %d: %s outside the safe range %s..%s (clamp=true sets the nearest)"
                   % ((e, _short(ks[j]), "%.3f" % (lim.lo[e] * self.gate_vpc),
                       "%.3f" % (lim.hi[e] * self.gate_vpc)) if gate else
                      (e, _short(ks[j]), lim.lo[e], lim.hi[e])), "k", e)
            targets.append(v)
        self.hal.read_gates(self.learner.pos)
        for j in range(len(targets)):
            self._feed()  # a gate's closed-loop put-back takes up to 8 pulses and reads
            self._set_edge(start + j, targets[j])
        self.rule.reset()
        out = {"count": len(ks)}
        if clamp:
            out["clamped"] = clamped
        return out

    def _set_edge(self, e, v):
        lim = self.limits
        pos = self.learner.pos
        if lim.kind[e] == consts.K_POT:
            if v != pos[e]:
                self.hal.move(e, v - pos[e])
            pos[e] = v
        elif lim.kind[e] == consts.K_DAC:
            self.hal.set_dac_gate(e, v)
            pos[e] = v
        elif lim.kind[e] == consts.K_PULSE:
            g = self._gates()
            g.steer(e, v)
            pos[e] = g.twins(e)[1]

    def _gates(self):
        """The pulse-gate control (``gates.PulseGates``), imported on first use: after
        boot, when the description's tables are freed (a 176 KB heap has no room for it
        while the board is wired)."""
        if self.pg == 0:
            from .gates import PulseGates
            # a pulse conducts for the time asked plus the time its line takes to switch
            # off (measured at boot); margins also cover twice the description's leakage
            # over one KEEP_MS between two looks of keep_gates
            leak = 0.0  # V/s, the description's idle gate drift
            for part in self.part:
                if part is not None and part["k"] == "t":
                    leak = max(leak, part.get("leak", 0.0))
            leak = 2.0 * leak * KEEP_MS / 1000.0 / self.gate_vpc
            self.pg = PulseGates(self.hal, self.limits, self.rule, self.nets, self.pulse_over, leak)
        return self.pg

    def keep_gates(self):
        """Pulse gates back into their planning range where they leaked or drifted out
        (``gates.PulseGates.keep``); every ``KEEP_MS``, the first time at the first pass
        of the main loop after boot (before the host is served)."""
        moved = self._gates().keep(KEEP_LIFT, self._feed)
        if moved:
            self.hal.read_gates(self.learner.pos)
        self.pg.t_keep = self.clock.ticks_us()
        return moved

    def _gate(self, e):
        """Pulse gate ``e``'s read-back code: the higher twin's."""
        return self._gates().twins(e)[1]

    def measure(self, args):
        self._idle()
        nodes = args.get("nodes") or list(range(self.n_nodes))
        _check(type(nodes) in (list, tuple), consts.E_BAD_ARGS, "nodes must be an array of node indices",
               "nodes")
        for k in nodes:
            _check(type(k) is int and 0 <= k < self.n_nodes, consts.E_OUT_OF_RANGE,
                   "node %s does not exist" % _short(k), "nodes")
        vf = self._read_free()
        return {"nodes": nodes, "v": [vf[k] * self.vpc for k in nodes]}

    def self_test(self, args):
        """Every learnable edge must move in the commanded direction (``selftest.py``)."""
        gc.collect()  # compiling selftest.py needs its largest blocks in one piece
        from . import selftest  # loaded on first use: less for boot to compile (heap peak)

        return selftest.run(self, args)

    def park(self, why=0):
        """Inputs to 0 V, learning stopped; ``why`` the fault flag that parked it (0: asked)."""
        self.training = False
        self.hal.park()
        self.parked = True
        self.learner.flt |= why
        reason = ("host_silent" if why == consts.F_HOST_SILENT else
                  "limit" if why == consts.F_LIMIT else "request")
        self.srv.event(msgs.EV_PARKED, {"reason": reason, "flt": self.faults()})

    def park_cmd(self, args):
        self.park()
        return {"parked": True}

    def repl(self, args):
        self.srv.defer(self._to_repl if self.repl_flag else self._leave)
        return {}

    def _to_repl(self):
        # a running watchdog cannot be stopped: reset into main.py's maintenance boot
        self.park()
        _note(self.repl_flag)
        self._reset()

    def _reset(self):
        if self.reset_note:  # asked for: the next boot is no watchdog reset
            _note(self.reset_note)
        self.clock.sleep_us(100000)  # the reply leaves over USB before the chip resets
        self.m.reset()

    def _leave(self):
        self.park()
        self.running = False
        close = getattr(self.port, "close", None)
        if close is not None:
            close()

    def reset(self, args):
        self.srv.defer(self._reset)
        return {}

    # -- main loop ----------------------------------------------------------------------

    def tick(self):
        """One pass: poll the host, run one learning step if training, watch for silence."""
        pg = self.pg
        if pg is not None and (pg == 0 or pg.t_keep is None or self.clock.ticks_diff(
                self.clock.ticks_us(), pg.t_keep) >= KEEP_MS * 1000):
            # the first pass: the gates' planning margins, and a board's gates that
            # leaked out of range while it was off put back, before the first request
            self.keep_gates()
        n = self.srv.poll()
        if self.wdt is not None:
            self.wdt.feed()
        if self.training:
            self._train_step()
        t = self.params["host_timeout_ms"]
        if t and not self.parked and self.srv.silent_ms() > t:
            self.park(consts.F_HOST_SILENT)
        return n

    def locked_step(self):
        """One learning step with the heap locked: MicroPython then puts call frames it
        would heap-allocate (more than 11 locals + stack slots) on the C stack, so the
        step allocates nothing. Returns edges moved, -1 refused."""
        if heap_lock is None:
            return self.learner.step()
        heap_lock()
        try:
            return self.learner.step()
        finally:
            heap_unlock()

    def locked_null(self):
        """The null-offset measurement (``Learner.measure_null``) with the heap locked, as
        a step (written out: a bound method passed in would be an allocation per pass)."""
        if heap_lock is None:
            return self.learner.measure_null()
        heap_lock()
        try:
            return self.learner.measure_null()
        finally:
            heap_unlock()

    def _train_step(self):
        c = self.clock
        t0 = c.ticks_us()
        lr = self.learner
        # a null-offset measurement is a pass of its own (no longer than a step, so the
        # watchdog budget of a step covers it); it is not counted as a step
        null = lr.null_every and lr.null_left <= 0
        try:
            if null:
                self.locked_null()
                return
            self.locked_step()
        except Exception as e:  # a firmware or driver bug: stop, keep serving the host
            self.training = False
            self.learner.flt |= consts.F_LIMIT
            msg = type(e).__name__ + ": " + str(e)
            self.srv.event(msgs.EV_FAULT, {"flt": self.faults(), "msg": msg[:120]})
            return
        dt = c.ticks_diff(c.ticks_us(), t0)
        self.step_n += 1
        if self.dt_sum < 0x3FFFFFFF - dt:  # tlm_every 0: 2**30 us pass in 18 min; stay small
            self.dt_sum += dt
            self.dt_n += 1
        if dt > self.dtmax:
            self.dtmax = dt
        every = self.params["tlm_every"]
        done = self.target and self.step_n >= self.target
        if every and (self.step_n % every == 0 or done):
            self.send_telemetry()
        if done:
            self.training = False
            self.srv.event(msgs.EV_DONE, {"step": self.step_n})

    def send_telemetry(self):
        """One telemetry frame (allocates a few floats: call between steps)."""
        lr = self.learner
        t = self.srv.tlm
        t.step = self.step_n
        t.err = lr.err * self.vpc * self.vpc / lr.err_n * lr.n_out if lr.err_n else 0.0
        t.pwr = self.power()  # network 1 at network 0's gates: no reads between steps
        t.pc = self.pwr_c if self.nets > 1 else None
        t.pm = self.measured_power()
        t.lam = self.params["lam"]
        t.n = lr.err_n // max(1, lr.n_out)
        t.dt = self.dt_sum // self.dt_n if self.dt_n else 0
        t.dtmax = self.dtmax
        t.flt = self.faults()
        self.tlm_count += 1
        tn = self.params["tlm_nodes"]
        te = self.params["tlm_edges"]
        t.v = lr.vf if tn and self.tlm_count % tn == 0 else None
        t.k = lr.pos if te and self.tlm_count % te == 0 else None
        lr.reset_stats()
        self.dt_sum = self.dt_n = self.dtmax = 0
        return self.srv.send_telemetry()

    def run(self, wait=None):
        """The main loop until ``repl``; ``wait(ms)`` idles when there is nothing to do."""
        self.srv.event(msgs.EV_BOOT, {"fw": VERSION, "board": self.name, "proto": msgs.PROTOCOL})
        while self.running and not getattr(self.port, "eof", False):
            if not self.tick() and not self.training and wait is not None:
                wait(5)
