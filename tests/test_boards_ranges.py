"""Integer ranges of the firmware for a board description (learnboard/boards/ranges.py).

The checks must be true, not just plausible: besides the arithmetic, the firmware's own
learning step runs under ``micropython.heap_lock()`` in a 32-bit MicroPython VM (31-bit
small ints, as on the RP2040) at the extreme inputs the bounds assume. A description
the check accepts runs there without a MemoryError; one it rejects raises one.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from learnboard.cli import main
from learnboard.firmware import FIRMWARE_DIR
from learnboard.firmware.lbfw import app as app_mod
from learnboard.firmware.lbfw import rule as crule

from learnboard.boards import compile_board, load_board, profile_path
from learnboard.boards import ranges as rg
from learnboard.boards.load import build_board
from learnboard.errors import InputError

from ._fake_machine import FAKE_MACHINE, VM_HARNESS
from .mpvm import vm_binary

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROFILES = ["gen1-digipot", "gen2-clln"]
SPI_BOARD = Path(__file__).parent / "boards" / "spi-parts.toml"
def run_vm32(source: str, path: Path, timeout: float = 300) -> str:
    env = dict(os.environ, MICROPYPATH=f"{path}:{FIRMWARE_DIR}")
    proc = subprocess.run([vm_binary("vm32"), "-X", "heapsize=192K", "-c", source], capture_output=True,
                          env=env, timeout=timeout)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"{out}\n{proc.stderr.decode(errors='replace')}"
    return out


def variant(profile: str, *subs: tuple[str, str]) -> str:
    """A shipped profile's TOML text with exact substitutions (each must apply)."""
    text = profile_path(profile).read_text()
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def body_unchecked(text: str) -> dict:
    """The compiled body of a description, without the cross-checks (the firmware takes
    whatever board.json it is given)."""
    return compile_board(build_board(tomllib.loads(text), "variant.toml")).body


# gen1-digipot with 16-bit PWM outputs (inputs and clamps) whose filter gain decides
# whether yc * clamp_k16 fits: about 2^32 / (6 x gain), so gain 2/3 is the border.
_PWM16 = ("bits = 12\nvref = 3.3\ngain = 0.15", "bits = 16\nvref = 3.3\ngain = {g}")


def borderline(gain: str) -> str:
    return variant("gen1-digipot", (_PWM16[0], _PWM16[1].format(g=gain)))


# -- the check --------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_profiles_pass_and_report_headroom(profile, capsys):
    body = compile_board(load_board(profile)).body
    rg.check_ranges(body)
    worst, mine = rg.headroom(body)
    assert worst.ratio < 1 and mine is not None and mine.ratio < 1
    assert main(["board", "check", profile]) == 0
    out = capsys.readouterr().out
    assert "integer ranges: within 2^30; largest set by this description" in out
    assert main(["board", "show", profile]) == 0
    assert "integer ranges: within 2^30" in capsys.readouterr().out
    clamp = [x for x in rg.intermediates(body) if "_drive_clamp" in x.name]
    assert clamp and all(x.ok and x.hi < 1 << 29 for x in clamp)  # 2^24.1 on gen2, 2^28.2 on gen1
    print(profile, rg.headroom_line(body))


def test_check_ranges_lists_every_intermediate(capsys):
    assert main(["board", "check", "gen2-clln", "--ranges"]) == 0
    out = capsys.readouterr().out
    for name in ("yc * self.clamp_k16[k]", "sd[e] += b * b - a", "(self.g_charge - g) * q",
                 "s += adc.read_u16() >> sh", "(span << FRAC) // rc"):
        assert name in out, name


def test_test_board_with_spi_parts_passes():
    rg.check_ranges(compile_board(load_board(SPI_BOARD)).body)


def test_16_bit_dac_with_gain_1_adc_is_rejected_naming_the_fields(tmp_path, capsys):
    text = variant("gen2-clln", ("bits = 8\n", "bits = 16\n"),
                   ("gain = 7.0         # 0.45 V x 7", "gain = 1.0         # 0.45 V x 1"),
                   ("gain = 7.0\nnet = 1", "gain = 1.0\nnet = 1"))
    path = tmp_path / "dac16.toml"
    path.write_text(text)
    out = tmp_path / "board.json"
    assert main(["board", "compile", str(path), "-o", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "dacs.din.bits" in err and "12 data bits" in err
    assert "yc * self.clamp_k16[k]" in err  # the product overflows as well
    bad = {x.name: x for x in rg.failures(body_unchecked(text))}
    clamp = bad["learn.py:Learner._drive_clamp: yc * self.clamp_k16[k] (output y)"]
    assert clamp.hi > 1 << 30 and "muxes.nodes_free.gain" in clamp.fields


def test_check_rejects_a_compiled_board_json_out_of_range(tmp_path, capsys):
    """A board.json made elsewhere (or by an older learnboard) is checked too."""
    from learnboard.boards.compile import CompiledBoard

    path = CompiledBoard.from_body(body_unchecked(borderline("0.666"))).write(
        tmp_path / "board.json")
    assert main(["board", "check", str(path)]) == 2
    assert f"{path}: pwm.bits: learn.py:Learner._drive_clamp" in capsys.readouterr().err


def test_16_bit_pwm_with_gain_1_adc_is_rejected_with_a_fix(tmp_path, capsys):
    text = variant("gen1-digipot", (_PWM16[0], _PWM16[1].format(g=0.15)),
                   ("gain = 6.0        # 0.5 V x 6", "gain = 1.0        # 0.5 V x 1"),
                   ("gain = 6.0\nnet = 1", "gain = 1.0\nnet = 1"))
    path = tmp_path / "pwm16.toml"
    path.write_text(text)
    assert main(["board", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: pwm.bits: learn.py:Learner._drive_clamp: yc * self.clamp_k16[k]" in err
    assert "1,073,741,823" in err and "MemoryError" in err
    assert "muxes.nodes_free.gain" in err and "pwm.bits <= 11" in err


@pytest.mark.parametrize("subs, field, words", [
    ((("bits = 12\nvref = 3.3\noversample", "bits = 15\nvref = 3.3\noversample"),),
     "adc.bits", "adc.bits <= 14"),
    ((("oversample = 16", "oversample = 512"),), "adc.oversample", "adc.oversample <= 256"),
])
def test_adc_fields_beyond_the_firmware_are_rejected(subs, field, words):
    with pytest.raises(InputError) as info:
        load_board_text(variant("gen1-digipot", *subs))
    assert info.value.field == field and words in str(info.value)


def load_board_text(text: str):
    from learnboard.boards import parse_board

    return parse_board(text, "variant.toml")


def test_borderline_clamp_gain():
    load_board_text(borderline("0.667"))
    with pytest.raises(InputError, match="pwm.bits: learn.py:Learner._drive_clamp"):
        load_board_text(borderline("0.666"))


def test_constants_are_the_firmwares():
    assert (rg.ONE, rg.SAT, rg.SMALL, rg.SMALL_MAX) == (crule.ONE, crule.SAT, crule.SMALL,
                                                        crule.LIMIT)
    assert rg.BATCH_MAX == app_mod.MAX_EXAMPLES
    r = crule.Rule([0], [1], [crule.PULSE], [0], [crule.gate_gains(0.001)], [0], [100])
    r.set_params(1.0, 1.0, 0.0, 1e-3, max_us=rg.QUANTA_MAX, g_charge=rg.GATE_CODE_MAX,
                 rc_us=rg.RC_MIN)
    for bad in ({"max_us": rg.QUANTA_MAX + 1}, {"g_charge": rg.GATE_CODE_MAX + 1},
                {"rc_us": rg.RC_MIN - 1}):
        with pytest.raises(ValueError):
            r.set_params(1.0, 1.0, 0.0, 1e-3, **bad)
    with pytest.raises(ValueError):
        crule.Rule([0], [1], [crule.DAC], [0], [crule.gate_gains(0.001)], [0], [1],
                   vmax=rg.RULE_VMAX + 1)


def _cpython_app(body):
    machine = types.ModuleType("fake_machine")
    exec(FAKE_MACHINE, machine.__dict__)

    class Clock:
        ticks_us = staticmethod(lambda: 0)
        ticks_ms = staticmethod(lambda: 0)
        ticks_diff = staticmethod(lambda a, b: a - b)

        def sleep_us(self, us):
            pass

    class Port:
        def read(self):
            return None

        def write(self, data):
            pass

    return app_mod.App(body, "0" * 64, machine, Clock(), Port())


@pytest.mark.parametrize("board", PROFILES + [str(SPI_BOARD)])
def test_derived_values_are_the_firmwares(board):
    """The values the bounds start from are what the firmware derives from board.json
    (CPython runs the same App code on a fake machine)."""
    body = compile_board(load_board(board)).body
    app = _cpython_app(body)
    b = rg._Board(body)
    assert (b.A, b.vpc) == (app.adc_max, app.vpc)
    assert [b.clamp_k16(p["d"][-1]) for p in body["outs"]] == app.clamp_k16
    assert b.T == int(app.vn / app.vpc + 0.5)
    with pytest.raises(app_mod.Fail):
        app.set_params({"oversample": rg.OVERSAMPLE_MAX + 1})
    with pytest.raises(app_mod.Fail):
        app.set_params({"pulse_us": rg.QUANTA_MAX + 1})
    with pytest.raises(app_mod.Fail):
        app.set_params({"eta": 1.0 + 1e-9})  # the nudge: nudge16 <= 65536
    g = b.gates()
    if g is not None:
        assert g["g_charge"] == app.limits.g_charge
        assert g["rc"] == min(65535, app.limits.rc_us)
        pulse = [e for e in range(app.n_edges) if app.limits.kind[e] == 2]
        assert g["hi"] >= max(app.limits.hi[e] for e in pulse)


def test_every_name_points_at_firmware_code():
    """``file:Class.function: expression``: the function exists in that firmware file."""
    defs: dict[str, set[str]] = {}
    for path in (FIRMWARE_DIR / "lbfw").glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{f.name}" for f in node.body
                          if isinstance(f, ast.FunctionDef)}
        defs[path.name] = names
    for board in PROFILES + [str(SPI_BOARD)]:
        for x in rg.intermediates(compile_board(load_board(board)).body):
            where = x.name.split(": ", 1)[0]
            for part in where.split(" / "):
                file, func = part.split(":")
                assert func in defs[file], x.name


# -- the bounds hold in the firmware's own step on a 32-bit VM ------------------------------

# A machine whose ADC answers by the selected multiplexer channel (select lines GPIO
# 2-5 on both shipped boards), so every node and gate can be put at its extreme.
EXTREME_MACHINE = r'''
PINS = {}
SEL = (2, 3, 4, 5)
CODES = [[0] * 16 for _ in range(4)]  # read_u16 value per ADC input, per mux channel


class Pin:
    OUT = 1
    IN = 0

    def __init__(self, n, mode=0, value=None):
        self.n = n
        self.v = 0
        PINS[n] = self

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class SPI:
    def __init__(self, id, baudrate=0, sck=None, mosi=None, miso=None):
        pass

    def write(self, buf):
        pass


class I2C:
    def __init__(self, id, sda=None, scl=None, freq=0):
        pass

    def writeto(self, addr, buf):
        pass

    def readfrom_into(self, addr, buf):  # a current monitor: 0, conversion ready
        buf[0], buf[1] = 0, 2


class PWM:
    def __init__(self, pin):
        self.d = 0

    def freq(self, f):
        pass

    def duty_u16(self, d):
        self.d = d


class ADC:
    def __init__(self, pin):
        self.ch = pin - 26

    def read_u16(self):
        c = 0
        for b in range(4):
            p = PINS.get(SEL[b])
            if p is not None and p.v:
                c |= 1 << b
        return CODES[self.ch][c]


def reset():
    raise SystemExit
'''

STEP = VM_HARNESS + r'''
import gc, micropython, sys, time
from lbfw import app, desc
import machine

if PLAIN:  # the bytecode rule: its intermediates are heap ints too (viper's wrap instead)
    from lbfw import rule
    rule.make_rule = rule.Rule
body, h = desc.load_description(PATH)
a = app.App(body, h, machine, Clock(), NullPort())
for ac, ch, v in CODES:
    machine.CODES[ac][ch] = v
del body
gc.collect()
lr = a.learner
xs = [[a.vn * ((i + k) % 2) for k in range(lr.n_in)] for i in range(64)]
a.upload_examples({"x": xs, "y": [[0.0] * lr.n_out] * 64, "clear": True})
a.set_params(PARAMS)
res = "ok"
try:
    for i in range(STEPS):
        a.locked_step()
except MemoryError as e:
    res = "MemoryError"
    sys.print_exception(e)
yc = lr.vf[lr.out_node[0]]
print("result", res)
print("yc_k16", yc * lr.clamp_k16[0])
print("sd", max(max(lr.rule.sd), -min(lr.rule.sd)))
print("err", lr.err, lr.err_n)
print("clipped", a.rule.clipped, "refused", lr.refused)
print("viper", hasattr(a.rule, "pv"))
'''


def _codes(body: dict, free: int, clamped) -> list[tuple[int, int, int]]:
    """(ADC input, mux channel, read_u16 value): every free-network node at ``free``,
    clamped nodes at ``clamped(node)``, gates alternating between 0 and full scale."""
    top = ((1 << body["adc"]["bits"]) - 1) << (16 - body["adc"]["bits"])
    out = []
    for net in range(body["nets"]):
        for node, (m, ch) in enumerate(body["nrd"][net]):
            if m >= 0:
                v = free if net == 0 else clamped(node)
                out.append((body["mux"][m]["ac"], ch, v))
        for _e, (m, ch) in enumerate(body["grd"][net]):
            if m >= 0:
                out.append((body["mux"][m]["ac"], ch, top * (ch % 2)))
    return out


def _run_extremes(tmp_path, body: dict, params: dict, steps: int, plain: bool = False) -> dict:
    from learnboard.boards.compile import CompiledBoard

    (tmp_path / "machine.py").write_text(EXTREME_MACHINE)
    CompiledBoard.from_body(body).write(tmp_path / "board.json")
    top = ((1 << body["adc"]["bits"]) - 1) << (16 - body["adc"]["bits"])
    codes = _codes(body, top, lambda node: top * (node % 2))
    src = (f"PATH = {str(tmp_path / 'board.json')!r}\nCODES = {codes!r}\nPARAMS = {params!r}\n"
           f"STEPS = {steps}\nPLAIN = {plain}\n" + STEP)
    out = run_vm32(src, tmp_path)
    facts = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        facts.setdefault(key, value)
    facts["output"] = out
    return facts


# Every host-settable parameter at its extreme: the largest batch (largest step sums),
# shuffled order (the 30-bit PRNG), no telemetry (the error sum is never reset), the
# largest learning rate (saturated factors: clipped), the longest pulse, lam 0.5 (both sums).
EXTREME = {"alpha": 1e29, "lam": 0.5, "batch": 64, "order": "shuffle", "tlm_every": 0,
           "pulse_us": 8191, "oversample": 1, "seed": 0x3FFFFFFF}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode, order, plain", [
    ("cl", "shuffle", False), ("gen1", "shuffle", False), ("cl", "seq", False),
    ("cl", "shuffle", True), ("gen1", "seq", True)])
def test_shipped_profiles_step_at_the_extremes_in_the_32_bit_vm(tmp_path, profile, mode, order,
                                                                 plain):
    """Both orders were MemoryErrors before: the shuffle's PRNG shifted a 30-bit state
    left, and the error sum added before it compared."""
    body = compile_board(load_board(profile)).body
    params = dict(EXTREME, eta=1.0, mode=mode, order=order)
    facts = _run_extremes(tmp_path, body, params, steps=3, plain=plain)
    assert facts["result"] == "ok", facts["output"]
    S, _, _ = rg._Board(body).batch_sums()
    assert int(facts["sd"]) == S  # the largest step sum is reached, and it is a small int
    assert int(facts["err"].split()[0]) > (1 << 30) - (1 << 25)  # the error sum saturated
    assert facts["clipped"].startswith("True")  # the factors saturated
    assert facts["viper"] == str(not plain)


def test_borderline_accepted_description_steps_without_memory_error(tmp_path):
    body = compile_board(load_board_text(borderline("0.667"))).body
    bound = max(x.hi for x in rg.intermediates(body) if "_drive_clamp" in x.name)
    # the nudge ~ 0 keeps yc at the free reading, full scale: the product's extreme
    facts = _run_extremes(tmp_path, body, dict(EXTREME, eta=1e-9, mode="gen1"), steps=2)
    assert facts["result"] == "ok", facts["output"]
    product = int(facts["yc_k16"])
    assert (1 << 30) * 0.999 < product <= bound < 1 << 30


def test_borderline_rejected_description_raises_memory_error_in_the_step(tmp_path):
    text = borderline("0.666")
    with pytest.raises(InputError):
        load_board_text(text)
    body = body_unchecked(text)
    facts = _run_extremes(tmp_path, body, dict(EXTREME, eta=1e-9, mode="gen1"), steps=2)
    assert facts["result"] == "MemoryError", facts["output"]
    assert "_drive_clamp" in facts["output"]  # where the traceback points
    assert int(facts["yc_k16"]) > (1 << 30) - 1  # and the plain arithmetic agrees
