"""Cross-check with ngspice: write a netlist for a Circuit, run ``ngspice -b``, read the result.

The netlist reproduces our models exactly where they are meant to agree:

* resistor edge ``e = (i, j)`` → ``Re ni nj 1/k``;
* transistor edge → a level-1 NMOS ``Me ni ge nj 0`` with its own ``.model`` (``KP = beta``,
  ``W = L``, ``VTO = vt``, ``GAMMA = 0`` and ``LAMBDA = 0``, so no body effect or channel-length
  modulation; ``IS = 0`` removes the bulk-junction leakage; ``TNOM = TEMP`` so no temperature
  scaling); its gate ``ge`` is driven by an ideal source ``VGe ge 0``. Level-1 has a hard
  cut-off, so the two models agree only where every source overdrive is at least the
  subthreshold knee (see :mod:`learnboard.physics.devices`);
* diode edge → ``De ni nj`` with ``IS``, ``N`` and the circuit's thermal voltage (set
  through the simulation temperature);
* ``Fix(n, v)`` → ``VFk nn 0 v``; ``FixDrop(i, j, v)`` → a floating source ``VFk ni nj v``.

The ground node is SPICE node ``0``; node ``n`` is ``n<n>``. The operating point is
written as an ASCII raw file (16 significant digits) with tightened tolerances.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learnboard.errors import LearnboardError
from learnboard.physics.circuit import DIODE, RESISTOR, TRANSISTOR, Circuit
from learnboard.physics.solver import Constraint, Fix, FixDrop

# Boltzmann constant over elementary charge as ngspice defines them (CODATA 2014,
# src/include/ngspice/const.h), and 0 °C in kelvin
K_OVER_Q = 1.38064852e-23 / 1.6021766208e-19
CELSIUS_ZERO = 273.15

# Tight enough that ngspice's own convergence error is far below the 1e-9 / 1e-4 checks.
DEFAULT_OPTIONS = {
    "reltol": 1e-12,
    "abstol": 1e-18,
    "vntol": 1e-15,
    "gmin": 1e-18,
    "itl1": 500,
}

CHANNEL_SIZE = "W=10u L=10u"


class SpiceError(LearnboardError):
    """ngspice is missing, failed, or produced output we cannot read."""


@dataclass
class SpiceResult:
    """ngspice's operating point.

    Attributes:
        node_voltages: (N,) volts, ground = 0.
        constraint_currents: (m,) amperes each constraint source pushes into its node
            (same sign convention as :class:`~learnboard.physics.solver.DCSolution`).
        netlist: the netlist that was simulated.
        log: ngspice's console output.
    """

    node_voltages: np.ndarray
    constraint_currents: np.ndarray
    netlist: str
    log: str


def _num(x) -> str:
    """Shortest text that reads back as the same double."""
    return repr(float(x))


def _node(circuit: Circuit, n: int) -> str:
    return "0" if n == circuit.network.ground else f"n{n}"


def write_netlist(
    circuit: Circuit,
    fixes: Sequence[Constraint],
    *,
    options: dict | None = None,
    raw_file: str = "op.raw",
) -> str:
    """SPICE netlist (a string) for ``circuit`` under ``fixes``; ``.op`` written to ``raw_file``."""
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    temp_c = circuit.vt_thermal / K_OVER_Q - CELSIUS_ZERO
    lines = [f"* learnboard: {circuit.network.name}"]
    opt_txt = " ".join(f"{k}={v:.12g}" for k, v in opts.items())
    lines.append(f".options temp={temp_c:.12g} tnom={temp_c:.12g} {opt_txt}")
    edges = circuit.network.edges
    for e in range(circuit.n_edges):
        a, b = _node(circuit, int(edges[e, 0])), _node(circuit, int(edges[e, 1]))
        kind = int(circuit.kind[e])
        if kind == RESISTOR:
            lines.append(f"R{e} {a} {b} {_num(1.0 / circuit.conductance[e])}")
        elif kind == TRANSISTOR:
            lines.append(f"M{e} {a} g{e} {b} 0 nm{e} {CHANNEL_SIZE}")
            lines.append(f"VG{e} g{e} 0 DC {_num(circuit.gate[e])}")
            lines.append(
                f".model nm{e} NMOS (LEVEL=1 VTO={_num(circuit.vt[e])} "
                f"KP={_num(circuit.beta[e])} GAMMA=0 LAMBDA=0 IS=0 JS=0 PHI=0.6)"
            )
        elif kind == DIODE:
            lines.append(f"D{e} {a} {b} dm{e}")
            lines.append(
                f".model dm{e} D (IS={_num(circuit.i_s[e])} N={_num(circuit.n_ideality[e])} RS=0)"
            )
    for k, f in enumerate(fixes):
        if isinstance(f, Fix):
            lines.append(f"VF{k} {_node(circuit, f.node)} 0 DC {_num(f.volts)}")
        elif isinstance(f, FixDrop):
            lines.append(f"VF{k} {_node(circuit, f.i)} {_node(circuit, f.j)} DC {_num(f.volts)}")
    lines += [
        ".control",
        "set filetype=ascii",
        "set numdgt=16",
        "op",
        f"write {raw_file} all",
        "quit",
        ".endc",
        ".end",
    ]
    return "\n".join(lines) + "\n"


def read_raw_ascii(text: str) -> dict[str, float]:
    """Variables of a one-point ASCII raw file as ``{name: value}`` (names lower-case)."""
    lines = text.splitlines()
    try:
        n_vars = int(next(ln for ln in lines if ln.startswith("No. Variables:")).split(":")[1])
        start = lines.index("Variables:") + 1
        names = [lines[start + k].split()[1].lower() for k in range(n_vars)]
        vstart = lines.index("Values:") + 1
        tokens = " ".join(lines[vstart:]).split()
    except (StopIteration, ValueError, IndexError) as exc:
        raise SpiceError(f"cannot parse ngspice raw file: {exc}") from None
    # first token is the point index
    values = [float(t) for t in tokens[1 : 1 + n_vars]]
    if len(values) != n_vars:
        raise SpiceError(f"ngspice raw file has {len(values)} values for {n_vars} variables")
    return dict(zip(names, values, strict=True))


def run_ngspice(
    circuit: Circuit,
    fixes: Sequence[Constraint],
    *,
    ngspice: str | None = None,
    options: dict | None = None,
    timeout: float = 60.0,
) -> SpiceResult:
    """Simulate ``circuit`` under ``fixes`` with ngspice's ``.op``; return its operating point.

    Raises:
        SpiceError: ngspice not found, failed, or its output is unreadable.
    """
    exe = ngspice or shutil.which("ngspice")
    if exe is None:
        raise SpiceError("ngspice not found: install it (apt-get install -y ngspice)")
    with tempfile.TemporaryDirectory(prefix="learnboard-spice-") as tmp:
        netlist = write_netlist(circuit, fixes, options=options, raw_file="op.raw")
        cir = Path(tmp) / "circuit.cir"
        cir.write_text(netlist)
        try:
            proc = subprocess.run(
                [exe, "-b", str(cir.name)],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SpiceError(f"ngspice took longer than {timeout} s") from None
        log = proc.stdout + proc.stderr
        raw = Path(tmp) / "op.raw"
        if proc.returncode != 0 or not raw.exists():
            raise SpiceError(f"ngspice failed (exit {proc.returncode}):\n{log[-2000:]}")
        data = read_raw_ascii(raw.read_text())
    v = np.zeros(circuit.n_nodes)
    for n in range(circuit.n_nodes):
        if n != circuit.network.ground:
            v[n] = data[f"v(n{n})"]
    # SPICE's branch current flows into the source's + terminal; we report what it
    # pushes into the node, hence the minus sign.
    lam = np.array([-data[f"i(vf{k})"] for k in range(len(fixes))])
    return SpiceResult(v, lam, netlist, log)


def relative_disagreement(circuit: Circuit, fixes: Sequence[Constraint], **run_kw) -> float:
    """Worst relative difference between our solve and ngspice's ``.op``.

    ``max(max|ΔV_n| / max|V|, max|Δλ_k| / max|λ|)`` over nodes and constraint currents:
    each normalised by its own scale, so a node near 0 V does not blow the ratio up.
    """
    from learnboard.physics.solver import solve

    ours = solve(circuit, fixes)
    ref = run_ngspice(circuit, fixes, **run_kw)
    v_scale = max(float(np.max(np.abs(ref.node_voltages))), 1e-300)
    err = float(np.max(np.abs(ours.node_voltages - ref.node_voltages))) / v_scale
    if len(fixes):
        lam = ref.constraint_currents
        lam_scale = max(float(np.max(np.abs(lam))), 1e-300)
        err = max(err, float(np.max(np.abs(ours.constraint_currents - lam))) / lam_scale)
    return err
