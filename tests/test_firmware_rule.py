"""The on-board fixed-point learning rule (``firmware/lbfw/rule.py``), run in the real VM.

Random cases are drawn in CPython, run inside MicroPython, and compared with the float
rule ``dk = -(alpha/eta) <(dV^C)^2 - (1 - lambda)(dV^F)^2>`` (the paper's rule) computed
here with numpy, within the error bound documented in ``docs/fixed-point.md``.
"""

from __future__ import annotations

import json
from array import array

import numpy as np
import pytest
from learnboard.firmware import FIRMWARE_DIR
from learnboard.firmware.lbfw import rule as crule

from tests.mpvm import run_vm

pytestmark = pytest.mark.vm

ONE = 1 << 16
VPC = 3.3 / 4095 / 11  # node volts per code: 3.3 V ADC behind a x11 amplifier
GVPC = 5.5 / 4095  # gate read-back volts per code
NN = 16


def lattice() -> tuple[list[int], list[int]]:
    """The Gen-2 4x4 periodic square lattice: 16 nodes, 32 edges."""
    ei, ej = [], []
    for r in range(4):
        for c in range(4):
            n = 4 * r + c
            ei += [n, n]
            ej += [4 * r + (c + 1) % 4, 4 * ((r + 1) % 4) + c]
    return ei, ej


EI, EJ = lattice()
NE = len(EI)
KIND = [crule.POT] * 16 + [crule.DAC] * 8 + [crule.PULSE] * 8
MODEL = [0] * 16 + [1] * 16
LO = [0] * 16 + [136] * 16
HI = [99] * 16 + [3872] * 16
GATE_SCALE = 20.0  # gate model gain multiplier (gates learn at 20x alpha, in V/V^2)
GATE = dict(rc_us=2200, g_charge=5956, g_discharge=0)

VM_PRELUDE = r"""
import array, json, sys
from lbfw import rule
try:
    from lbfw import rule_viper
except ImportError:
    rule_viper = None

def build(cfg, fast=False):
    cls = rule_viper.Rule if fast else rule.Rule
    models = [rule.pot_gains(100, 40.0, 32000.0),
              array.array('f', [cfg['gate_scale'] / cfg['gvpc']])]
    r = cls(cfg['ei'], cfg['ej'], cfg['kind'], cfg['model'], models, cfg['lo'], cfg['hi'])
    return r

def H(v):
    return array.array('H', v)

cfg = json.loads(sys.stdin.readline())
"""


def base_cfg() -> dict:
    return dict(ei=EI, ej=EJ, kind=KIND, model=MODEL, lo=LO, hi=HI, gvpc=GVPC,
                gate_scale=GATE_SCALE)


def vm(body: str, cfg: dict, heap: str = "4M", **kw) -> list:
    """Run ``body`` after the prelude with ``cfg`` on stdin; return its JSON lines."""
    proc = run_vm(VM_PRELUDE + body, heap=heap, stdin=(json.dumps(cfg) + "\n").encode(), **kw)
    return [json.loads(x) for x in proc.stdout.decode().splitlines() if x.startswith(("[", "{"))]


def gains() -> tuple[np.ndarray, float]:
    """The float32 gains the rule stores (pot taps per siemens; gate codes per volt)."""
    pot = np.asarray(crule.pot_gains(100, 40.0, 32000.0), dtype=np.float64)
    gate = float(np.float32(GATE_SCALE / GVPC))
    return pot, gate


def float_update(vf: np.ndarray, vc: np.ndarray, p: dict, pos: np.ndarray) -> np.ndarray:
    """Float rule per edge, in actuator quanta (taps up / gate codes up)."""
    i, j = np.array(EI), np.array(EJ)
    df = (vf[:, i] - vf[:, j]) * p["volts_per_code"]
    dc = (vc[:, i] - vc[:, j]) * p["volts_per_code"]
    dk = -(p["alpha"] / p["eta"]) * np.mean(dc**2 - (1 - p["lam"]) * df**2, axis=0)
    pot, gate = gains()
    out = np.empty(NE)
    for e in range(NE):
        # A tap up lowers k (gain = |dt/dk|); a gate code up raises it.
        out[e] = -dk[e] * pot[pos[e]] if KIND[e] == crule.POT else dk[e] * gate
    return out


def term_bound(vf, vc, p, pos) -> np.ndarray:
    """Documented error bound of one apply, in 2**-16 quanta (docs/fixed-point.md)."""
    i, j = np.array(EI), np.array(EJ)
    n = vf.shape[0]
    sqf = ((vf[:, i] - vf[:, j]) ** 2).astype(np.float64)
    sqc = ((vc[:, i] - vc[:, j]) ** 2).astype(np.float64)
    pot, gate = gains()
    g = np.array([pot[pos[e]] if KIND[e] == crule.POT else gate for e in range(NE)])
    fc = p["alpha"] / p["eta"] * p["volts_per_code"] ** 2 / n * ONE * g  # per code^2
    s_d = np.abs((sqc - sqf).sum(axis=0))
    s_f = sqf.sum(axis=0)
    # Per scaled term: 1 unit + 2**-12 relative (split product) + 2**-15 (mantissa).
    bound = 2.0 + (2.0**-12 + 2.0**-15) * fc * (s_d + p["lam"] * s_f)
    bs = 0
    while n * ((4095 * 4095 >> bs) + 1) >= 1 << 30:
        bs += 1
    if bs:  # per-example rounding of the squares to 2**bs code^2
        bound = bound + n * 2.0**bs * fc * (1.0 + 0.5 * p["lam"])
    return bound


APPLY_CASES = r"""
fast = cfg['fast']
out = []
for case in cfg['cases']:
    r = build(cfg, fast)
    r.set_params(**case['params'])
    pos = array.array('i', case['pos'])
    r.begin()
    for a, b in zip(case['vf'], case['vc']):
        r.add(H(a), H(b))
    moved = r.apply(pos)
    print(json.dumps([list(r.out), list(r.acc), moved]))
"""


def random_cases(rng: np.random.Generator, count: int) -> list[dict]:
    cases = []
    for _ in range(count):
        n = int(rng.choice([1, 2, 5, 20, 63, 64, 100]))
        lam = float(rng.choice([0.0, 1e-6, 1e-3, 0.3, 0.5, 0.7, 1.0]))
        vf = rng.integers(0, 4096, size=(n, NN))
        nudge = rng.integers(-300, 301, size=(n, NN)) * (rng.random((n, NN)) < 0.5)
        vc = np.clip(vf + nudge, 0, 4095)
        pos = np.array([50] * 16 + [2000] * 16)
        p = dict(alpha=1.0, eta=float(rng.choice([1.0, 0.5, 0.1])), lam=lam,
                 volts_per_code=VPC, n_examples=n, max_taps=8191, max_codes=8191,
                 max_us=8191, **GATE)
        # Scale alpha so the largest update is ~10**U(-3, 1.5) quanta (no end stop hit).
        big = np.abs(float_update(vf, vc, p, pos)).max()
        p["alpha"] = float(10 ** rng.uniform(-3, 1.5) / big)
        cases.append(dict(params=p, pos=pos.tolist(), vf=vf.tolist(), vc=vc.tolist()))
    return cases


def emitted(out: np.ndarray, acc: np.ndarray, case: dict) -> np.ndarray:
    """Quanta the rule moved plus its residue, in 2**-16 quanta."""
    pos = np.array(case["pos"])
    total = np.asarray(out, dtype=np.float64) * ONE + np.asarray(acc)
    for e in range(NE):
        if KIND[e] == crule.PULSE:  # one us of pulse = rate 2**-16 gate codes
            up = out[e] > 0 or acc[e] > 0
            span = GATE["g_charge"] - pos[e] if up else pos[e] - GATE["g_discharge"]
            rate = (span << 16) // GATE["rc_us"]
            total[e] = out[e] * rate + acc[e]
    return total


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "viper"])
def test_fixed_point_matches_float_rule(fast):
    rng = np.random.default_rng(4)
    cases = random_cases(rng, 40)
    rows = vm(APPLY_CASES, dict(base_cfg(), fast=fast, cases=cases))
    assert len(rows) == len(cases)
    worst = 0.0
    for case, (out, acc, moved) in zip(cases, rows, strict=False):
        vf, vc = np.array(case["vf"]), np.array(case["vc"])
        p, pos = case["params"], np.array(case["pos"])
        want = float_update(vf, vc, p, pos) * ONE
        got = emitted(np.array(out), np.array(acc), case)
        bound = term_bound(vf, vc, p, pos)
        err = np.abs(got - want)
        assert np.all(err <= bound), (p, err.max(), bound[np.argmax(err - bound)])
        # In quanta: below 1e-3 of a tap/code, or 1e-3 relative for large updates.
        worst = max(worst, float((err / (ONE + np.abs(want))).max()))
        assert moved == int(np.count_nonzero(out))
        # Whole quanta emitted (toward zero), the rest kept as a residue below one.
        for e in range(NE):
            if KIND[e] != crule.PULSE:
                assert out[e] == int(want[e] / ONE) or abs(want[e] / ONE - round(want[e] / ONE)) < 1e-3
                assert abs(acc[e]) < ONE
    assert worst < 1e-3


def test_viper_and_plain_are_bit_identical():
    rng = np.random.default_rng(11)
    cases = random_cases(rng, 15)
    for c in cases[::3]:
        c["params"]["mode"] = crule.SIGN
        c["params"]["dead"] = 1000
    plain = vm(APPLY_CASES, dict(base_cfg(), fast=False, cases=cases))
    viper = vm(APPLY_CASES, dict(base_cfg(), fast=True, cases=cases))
    assert plain == viper


def test_cpython_gives_the_vm_result():
    """The module imports under CPython (no viper there) and computes the same integers."""
    pot = crule.pot_gains(100, 40.0, 32000.0)
    assert type(crule.make_rule(EI, EJ, KIND, MODEL, [pot, pot[:1]], LO, HI)) is crule.Rule
    rng = np.random.default_rng(12)
    cases = random_cases(rng, 5)
    rows = vm(APPLY_CASES, dict(base_cfg(), fast=False, cases=cases))
    pot = crule.pot_gains(100, 40.0, 32000.0)
    for case, (out, acc, _) in zip(cases, rows, strict=False):
        r = crule.Rule(EI, EJ, KIND, MODEL, [pot, array("f", [GATE_SCALE / GVPC])], LO, HI)
        r.set_params(**case["params"])
        pos = array("i", case["pos"])
        r.begin()
        for a, b in zip(case["vf"], case["vc"], strict=False):
            r.add(array("H", a), array("H", b))
        r.apply(pos)
        assert list(r.out) == out and list(r.acc) == acc


ACCUMULATE = r"""
r = build(cfg, cfg['fast'])
r.set_params(**cfg['params'])
pos = array.array('i', cfg['pos'])
vf = [H(v) for v in cfg['vf']]
vc = [H(v) for v in cfg['vc']]
hist = []
for s in range(cfg['steps']):
    r.begin()
    r.add(vf[s % len(vf)], vc[s % len(vc)])
    hist.append(list(pos))
    r.apply(pos)
    r.commit(pos)
print(json.dumps([hist, list(pos), list(r.acc)]))
"""


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "viper"])
def test_tap_accumulation_matches_float_accumulation(fast):
    """Many small updates: taps moved equal the float sum of fractional taps within one."""
    rng = np.random.default_rng(5)
    vf = rng.integers(0, 3500, size=(7, NN))
    # Clamped drops a few % larger on average: the updates add up instead of cancelling.
    vc = np.clip(np.rint(vf * rng.uniform(0.99, 1.05, size=(7, 1))), 0, 4095).astype(int)
    pos0 = np.array([50] * 16 + [2000] * 16)
    p = dict(alpha=1.0, eta=0.5, lam=1e-3, volts_per_code=VPC, n_examples=1,
             max_taps=8, max_codes=64, max_us=8191, **GATE)
    big = max(np.abs(float_update(vf[s : s + 1], vc[s : s + 1], p, pos0)).max() for s in range(7))
    p["alpha"] = 0.02 / big  # at most 0.02 quanta per step
    steps = 700
    hist, pos, acc = vm(ACCUMULATE, dict(base_cfg(), fast=fast, params=p, pos=pos0.tolist(),
                                         vf=vf.tolist(), vc=vc.tolist(), steps=steps))[0]
    hist = np.array(hist)
    want = np.zeros(NE)
    for s in range(steps):
        k = s % 7
        want += float_update(vf[k : k + 1], vc[k : k + 1], p, hist[s])
    moved = np.array(pos) - pos0
    worst = 0.0
    for e in range(NE):
        if KIND[e] == crule.PULSE:
            continue  # read-back edges: pos is not moved by commit
        assert abs(moved[e] - want[e]) < 1.0, (e, moved[e], want[e])
        # Including the residue: within the per-step bound (2 units) summed over the steps.
        drift = abs(moved[e] + acc[e] / ONE - want[e])
        assert drift < (2.0 * steps + 1e-3 * abs(want[e]) * ONE) / ONE
        worst = max(worst, drift)
    assert np.abs(moved[:24]).max() >= 3  # the updates did add up to whole taps
    print(f"accumulated error over {steps} steps: {worst:.2e} quanta")


def sign_expect(vf, vc, p, pos):
    i, j = np.array(EI), np.array(EJ)
    sqf = (vf[:, i] - vf[:, j]) ** 2
    sqc = (vc[:, i] - vc[:, j]) ** 2
    w = np.mean(sqc - (1 - p["lam"]) * sqf, axis=0)
    d = np.where(w > p["dead"], 1, np.where(w < -p["dead"], -1, 0))
    out = []
    for e in range(NE):
        if KIND[e] == crule.POT:
            q = int(np.clip(d[e], LO[e] - pos[e], HI[e] - pos[e]))
        elif KIND[e] == crule.DAC:
            q = -d[e] * p["sign_codes"]
        else:
            q = -d[e] * p["sign_us"]
        out.append(int(q))
    return out


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "viper"])
def test_sign_rule(fast):
    """Gen-1: a tap up when |dVc| > |dVf| (lambda 0), down when smaller, none in the dead band."""
    rng = np.random.default_rng(6)
    cases = []
    for _c in range(30):
        n = int(rng.choice([1, 1, 4]))
        vf = rng.integers(0, 4096, size=(n, NN))
        vc = np.clip(vf + rng.integers(-20, 21, size=(n, NN)), 0, 4095)
        pos = rng.choice([0, 1, 50, 98, 99], size=16).tolist() + [2000] * 16
        p = dict(alpha=1.0, eta=1.0, lam=float(rng.choice([0.0, 0.01, 0.6, 1.0])),
                 volts_per_code=VPC, n_examples=n, mode=crule.SIGN,
                 dead=float(rng.choice([0, 0, 5000])), sign_codes=3, sign_us=40, **GATE)
        cases.append(dict(params=p, pos=pos, vf=vf.tolist(), vc=vc.tolist()))
    rows = vm(APPLY_CASES, dict(base_cfg(), fast=fast, cases=cases))
    for case, (out, _acc, _) in zip(cases, rows, strict=False):
        vf, vc, p = np.array(case["vf"]), np.array(case["vc"]), case["params"]
        want = sign_expect(vf, vc, p, case["pos"])
        assert out == want
        if p["lam"] == 0 and p["dead"] == 0 and len(vf) == 1:
            # Reduced to the comparator: up iff |dVc| > |dVf|.
            df = np.abs(vf[0, EI] - vf[0, EJ])
            dc = np.abs(vc[0, EI] - vc[0, EJ])
            for e in range(16):
                if 0 < case["pos"][e] < 99:
                    assert out[e] == (1 if dc[e] > df[e] else -1 if dc[e] < df[e] else 0)


def xorshift32_halves(seed: int, count: int) -> list[int]:
    """Reference: the standard 32-bit xorshift (13, 17, 5); the rule uses the top half."""
    x = seed & 0xFFFFFFFF or 1
    tops = []
    for _ in range(count):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        tops.append(x >> 16)
    return tops


DESYNC = r"""
res = []
for seed in cfg['seeds']:
    r = build(cfg, cfg['fast'])
    r.set_params(**cfg['params'])
    r.seed(seed)
    vf = H(cfg['vf'])
    vc = H(cfg['vc'])
    pos = array.array('i', cfg['pos'])
    sel = []
    for s in range(cfg['steps']):
        r.begin()
        r.add(vf, vc)
        r.apply(pos)
        sel.append([1 if q else 0 for q in r.out])
    res.append(sel)
print(json.dumps(res))
"""


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "viper"])
def test_desynchronous_mode(fast):
    """Each edge updates with probability p, from a seeded, reproducible xorshift32."""
    vf = [4095 * ((n // 4 + n % 4) % 2) for n in range(NN)]  # checkerboard: every drop 4095
    vc = [0] * 16  # u = -dVf^2 < 0 on every edge: each selected edge moves
    p = dict(alpha=1.0, eta=1.0, lam=0.0, volts_per_code=VPC, n_examples=1, mode=crule.SIGN,
             p=0.3, sign_codes=1, sign_us=10, **GATE)
    steps = 200
    res = vm(DESYNC, dict(base_cfg(), fast=fast, params=p, vf=vf, vc=vc, pos=[50] * 16 + [2000] * 16,
                          steps=steps, seeds=[12345, 12345, 777]))[0]
    a, b, c = (np.array(x) for x in res)
    assert (a == b).all()  # same seed, same edges
    assert (a != c).any()
    frac = a.mean()
    assert abs(frac - 0.3) < 0.03  # 6400 draws: sigma 0.006
    tops = np.array(xorshift32_halves(12345, steps * NE)).reshape(steps, NE)
    assert (a == (tops < int(0.3 * 65536 + 0.5))).all()


EXTREMES = r"""
import micropython, gc

def run(r, n, vf, vc, pos):
    micropython.heap_lock()  # locals only: module-level names would grow the globals dict
    for s in range(3):
        r.begin()
        for k in range(n):
            r.add(vf, vc)
        r.apply(pos)
        r.commit(pos)
    micropython.heap_unlock()

res = []
for case in cfg['cases']:
    r = build(cfg, cfg['fast'])
    r.set_params(**case['params'])
    pos = array.array('i', case['pos'])
    gc.collect()
    run(r, case['params']['n_examples'], H(case['vf']), H(case['vc']), pos)
    print(json.dumps([list(r.out), list(r.sd), list(r.sf)]))
"""


def extreme_cases() -> list[dict]:
    """All 0 against all 4095 (and alternating), lambda 0 and 1, largest factors."""
    alt = [0, 4095] * 8
    alt2 = [4095, 0] * 8
    cases = []
    for vf, vc in [([0] * 16, [4095] * 16), (alt, [0] * 16), ([0] * 16, alt), (alt, alt2),
                   (alt, alt)]:
        for lam in (0.0, 1.0, 1e-9):
            for n in (1, 63, 200):
                # Saturated factors, factors above one unit per code^2, and small ones.
                for mode, alpha in ((crule.ACCUM, 1e9), (crule.ACCUM, 1e-9),
                                    (crule.ACCUM, 1e-13), (crule.SIGN, 1.0)):
                    p = dict(alpha=alpha, eta=1e-3, lam=lam, volts_per_code=1.0, n_examples=n,
                             mode=mode, max_taps=8191, max_codes=8191, max_us=8191,
                             rc_us=16, g_charge=16383, g_discharge=0, dead=1e7)
                    cases.append(dict(params=p, vf=vf, vc=vc,
                                      pos=[0] * 8 + [99] * 8 + [136] * 8 + [3872] * 8))
    return cases


def test_overflow_bound_in_cpython_instrumented():
    """Every hot-path intermediate stays within the 31-bit small-int range at the extremes.

    The VM here has 63-bit small ints, so the bound is checked by rewriting the
    module's hot-path arithmetic to assert each result is within [-2**30, 2**30 - 1].
    """
    import ast

    src = (FIRMWARE_DIR / "lbfw" / "rule.py").read_text()
    tree = ast.parse(src)
    hot = {"begin", "add", "apply", "commit", "mulshift"}
    seen = []

    class Wrap(ast.NodeTransformer):
        def visit_BinOp(self, node):
            self.generic_visit(node)
            return ast.Call(ast.Name("_chk", ast.Load()), [node], [])

        def visit_UnaryOp(self, node):
            self.generic_visit(node)
            return ast.Call(ast.Name("_chk", ast.Load()), [node], [])

        def visit_AugAssign(self, node):
            # x op= v  ->  x = _chk(x op v)
            self.generic_visit(node)
            load = ast.parse(ast.unparse(node.target), mode="eval").body
            value = ast.Call(ast.Name("_chk", ast.Load()),
                             [ast.BinOp(load, node.op, node.value)], [])
            return ast.Assign([node.target], value)

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in hot:
            Wrap().visit(node)
            seen.append(node.name)
    assert set(seen) == hot
    ast.fix_missing_locations(tree)

    def _chk(v):
        if isinstance(v, int) and not isinstance(v, bool):
            assert -(1 << 30) <= v < (1 << 30), f"intermediate {v} outside the 31-bit range"
        return v

    ns = {"_chk": _chk, "__name__": "rule_checked", "__package__": "learnboard.firmware.lbfw"}
    exec(compile(tree, "rule_checked", "exec"), ns)
    R = ns["Rule"]
    pot = ns["pot_gains"](100, 40.0, 32000.0)
    gate = array("f", [GATE_SCALE / GVPC])
    for case in extreme_cases():
        r = R(EI, EJ, KIND, MODEL, [pot, gate], LO, HI)
        r.set_params(**case["params"])
        pos = array("i", case["pos"])
        vf, vc = array("H", case["vf"]), array("H", case["vc"])
        for _ in range(2):
            r.begin()
            for _ in range(case["params"]["n_examples"]):
                r.add(vf, vc)
            r.apply(pos)
            r.commit(pos)
    # mulshift itself at the corners of its domain, against its documented error.
    sat = 1 << 28
    for x in (-(1 << 30), (1 << 30) - 1, -8193, -8191, -1, 0, 1, 8191, 8192, 123456789):
        for m in (0, 1, 16384, 32767):
            for s in (0, 5, 14, 15, 16, 17, 30, 46):
                want = min(sat, max(-sat, x * m / 2**s))
                tol = 0.5 if abs(x) < 8192 else 0.75 if s >= 16 else 2.0 ** (14 - s) + 0.5
                assert abs(ns["mulshift"](x, m, s) - want) <= tol, (x, m, s)


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "viper"])
def test_extreme_codes_in_vm(fast):
    """The extremes run under heap_lock in the VM, sums are exact and every edge moves."""
    cases = extreme_cases()
    rows = vm(EXTREMES, dict(base_cfg(), fast=fast, cases=cases))
    i, j = np.array(EI), np.array(EJ)
    for case, (_out, sd, sf) in zip(cases, rows, strict=False):
        n = case["params"]["n_examples"]
        vf, vc = np.array(case["vf"]), np.array(case["vc"])
        sqf = (vf[i] - vf[j]) ** 2
        sqc = (vc[i] - vc[j]) ** 2
        bs = 0
        while n * ((4095 * 4095 >> bs) + 1) >= 1 << 30:
            bs += 1
        h = (1 << bs) >> 1
        assert sf == (n * ((sqf + h) >> bs)).tolist()
        assert sd == (n * (((sqc + h) >> bs) - ((sqf + h) >> bs))).tolist()
        assert max(map(abs, sd + sf)) < 1 << 30


HEAP_LOCK = r"""
import gc, micropython
NT = 64
x = 2024
tf = []
tc = []
for t in range(NT):
    a = array.array('H', bytes(32))
    b = array.array('H', bytes(32))
    for i in range(16):
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        a[i] = (x >> 8) & 4095
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        b[i] = (a[i] + ((x >> 8) & 255) - 128) & 4095
    tf.append(a)
    tc.append(b)

def train(r, pos, tf, tc):
    moved = 0
    micropython.heap_lock()
    for s in range(1000):
        r.begin()
        r.add(tf[s & 63], tc[s & 63])
        r.add(tf[(s + 7) & 63], tc[(s + 7) & 63])
        moved += r.apply(pos)
        r.commit(pos)
    micropython.heap_unlock()
    return moved

for mode in (rule.ACCUM, rule.SIGN):
    r = rule.make_rule(cfg['ei'], cfg['ej'], cfg['kind'], cfg['model'],
                       [rule.pot_gains(100, 40.0, 32000.0), rule.gate_gains(cfg['gvpc'])],
                       cfg['lo'], cfg['hi'])
    r.set_params(alpha=3e-3, eta=0.5, lam=1e-3, volts_per_code=3.3 / 4095 / 11, n_examples=2,
                 mode=mode, p=0.7, seed=99, max_taps=2, g_charge=5956, g_discharge=0)
    pos = array.array('i', [50] * 16 + [2000] * 16)
    gc.collect()
    moved = train(r, pos, tf, tc)
    print(json.dumps([type(r) is not rule.Rule, moved, list(pos)]))
"""


def test_thousand_steps_under_heap_lock():
    """1000 steps of a 32-edge / 16-node network, board heap, no allocation allowed."""
    rows = vm(HEAP_LOCK, base_cfg(), heap="192K")
    assert len(rows) == 2
    assert rows[0][0]  # make_rule picked the viper kernels in this VM
    for _, moved, pos in rows:
        assert moved > 1000  # the loop really actuated
        assert all(lo <= q <= hi for lo, q, hi in zip(LO[:24], pos[:24], HI[:24], strict=False))


def test_parameter_errors():
    pot = crule.pot_gains(100, 40.0, 32000.0)
    gate = crule.gate_gains(GVPC)
    r = crule.Rule(EI, EJ, KIND, MODEL, [pot, gate], LO, HI)
    with pytest.raises(ValueError, match="eta"):
        r.set_params(alpha=1.0, eta=0.0, lam=0.0, volts_per_code=VPC)
    with pytest.raises(ValueError, match="alpha"):
        r.set_params(alpha=-1.0, eta=1.0, lam=0.0, volts_per_code=VPC)
    with pytest.raises(ValueError, match="len"):
        crule.Rule(EI, EJ[:-1], KIND, MODEL, [pot, gate], LO, HI)
    with pytest.raises(ValueError, match="bounds"):
        crule.Rule(EI, EJ, KIND, MODEL, [pot, gate], LO, [100] * 16 + HI[16:])
    r.set_params(alpha=1.0, eta=1.0, lam=0.0, volts_per_code=VPC, n_examples=2)
    r.begin()
    r.add(array("H", [0] * 16), array("H", [0] * 16))
    with pytest.raises(ValueError, match="n_examples"):
        r.apply(array("i", [50] * 16 + [2000] * 16))
    # A factor too large for the format saturates and says so.
    r.set_params(alpha=1e12, eta=1.0, lam=0.0, volts_per_code=1.0)
    assert r.clipped


def test_pot_gains_are_the_derivative_of_the_taper():
    """Gains are |dt/dk| of the taper (X9C303 log taper: x1.07 per tap; and a linear one)."""
    t = np.arange(100, dtype=np.float64)
    h = 1e-4
    tapers = {
        "log": lambda t: 40.0 * (32000.0 / 40.0) ** (t / 99),
        "lin": lambda t: 40.0 + t * (32000.0 - 40.0) / 99,
    }
    r = tapers["log"](t)
    assert abs(r[1] / r[0] - 1.07) < 0.001
    for name, res in tapers.items():
        g = np.asarray(crule.pot_gains(100, 40.0, 32000.0, name), dtype=np.float64)
        dkdt = (1 / res(t + h) - 1 / res(t - h)) / (2 * h)
        np.testing.assert_allclose(g, 1 / np.abs(dkdt), rtol=1e-5)
    # First order over one whole tap of the log taper: within 4 %.
    g = np.asarray(crule.pot_gains(100, 40.0, 32000.0), dtype=np.float64)
    np.testing.assert_allclose(1 / g[:-1], np.abs(np.diff(1 / r)), rtol=0.04)
