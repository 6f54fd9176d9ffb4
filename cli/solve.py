"""``learnboard solve``: the DC state of a network or board under voltage constraints."""

from __future__ import annotations

import argparse

HELP = "solve the DC state of a network or board"
DESCRIPTION = """\
Solve the DC operating point of a network under voltage constraints: node voltages,
edge currents (from the edge's first node to its second), and the dissipated power in
watts, P = Σ I·ΔV. For linear networks the paper's co-content ½ Σ k ΔV² is reported too,
labelled (it is what the authors' code calls "power").

Nodes are 0-based indices (or, for boards, node names). Constraints are ideal voltage
sources: --fix NODE=VOLTS holds a node against ground, --fix-drop I,J=VOLTS holds
V_I - V_J (a floating source; both nodes may be away from ground)."""

EPILOG = """\
examples:
  learnboard solve --network data_N00064_Lp0.0100_r1.txt --fix-drop 0,35=1 --json
      all conductances 1 S, V0 - V35 = 1 V, ground = last node; JSON on stdout
  learnboard solve --network net.txt --ground 0 --conductances k.txt --fix 3=0.5 --fix 7=0
      one conductance (S) per line of k.txt, in the network file's edge order
  learnboard solve --board gen2-clln --edge-state gates.txt --fix n11=0.45 --fix n22=0.1
      a shipped board: edge state = gate volts (transistors) or taps (digipots) per edge

value files (--conductances, --edge-state): numbers separated by spaces, commas or new
lines, '#' starts a comment; or a .npy array. One value per edge, in edge order.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("what to solve (one of)").add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--network",
        metavar="FILE",
        help="reference network file ('NN NE L', NN lines 'x y', NE lines 'i j'); all edges "
        "are resistors",
    )
    src.add_argument(
        "--board",
        metavar="NAME|FILE",
        help="board profile name (e.g. gen2-clln) or board TOML file",
    )
    p.add_argument(
        "--ground",
        type=int,
        metavar="N",
        help="ground node of --network (held at 0 V); default: the last node",
    )
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--conductances",
        metavar="FILE",
        help="one conductance (S) per edge; default: 1 S everywhere",
    )
    state.add_argument(
        "--edge-state",
        metavar="FILE",
        help="one state value per edge: conductance (S) for resistors of --network, tap for "
        "digipots, gate volts for transistors; boards default to the middle tap and the "
        "middle of the gate range",
    )
    p.add_argument(
        "--twin",
        type=int,
        default=0,
        metavar="K",
        help="which network of a twin board (0 free, 1 clamped); default 0",
    )
    p.add_argument(
        "--mismatch",
        type=int,
        metavar="SEED",
        help="boards: draw device spread from the parts' ratings with this seed",
    )
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NODE=VOLTS",
        help="hold NODE at VOLTS against ground (repeatable), e.g. --fix 3=0.45",
    )
    p.add_argument(
        "--fix-drop",
        action="append",
        default=[],
        metavar="I,J=VOLTS",
        help="hold V_I - V_J at VOLTS (repeatable), e.g. --fix-drop 0,35=1",
    )
    p.add_argument(
        "--gmin",
        type=float,
        default=0.0,
        metavar="S",
        help="conductance from every node to ground, as SPICE adds (e.g. 1e-12); default 0",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    import json

    from learnboard.physics.solver import solve

    circuit, names, source = _circuit(args)
    fixes = _fixes(args, names, circuit.n_nodes)
    sol = solve(circuit, fixes, gmin=args.gmin)
    if args.json:
        print(json.dumps(_as_dict(sol, circuit, fixes, source, names)))
    else:
        _summary(sol, circuit, fixes, source, names)
    return 0


# ----------------------------------------------------------------------------- inputs


def read_values(path: str, count: int, option: str):
    """One finite number per edge from a text or .npy file (clear errors otherwise)."""
    import numpy as np

    from learnboard.errors import InputError

    if path.endswith(".npy"):
        try:
            values = np.load(path, allow_pickle=False).astype(float).reshape(-1)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read .npy array: {exc}", source=path, field=option) from None
    else:
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", source=path, field=option) from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", source=path, field=option) from None
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            for token in line.split("#", 1)[0].replace(",", " ").split():
                try:
                    out.append(float(token))
                except ValueError:
                    raise InputError(
                        f"line {lineno}: {token!r} is not a number", source=path, field=option
                    ) from None
        values = np.array(out)
    if values.size != count:
        raise InputError(
            f"needs one value per edge ({count}), found {values.size}", source=path, field=option
        )
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InputError(f"value {bad} is {values[bad]!r}", source=path, field=option)
    return values


def _circuit(args):
    """(Circuit, node names or None, source label) from --network or --board."""
    import numpy as np

    from learnboard.errors import InputError
    from learnboard.network import read_network
    from learnboard.physics.circuit import Circuit

    if args.network:
        if args.twin or args.mismatch is not None:
            raise InputError("--twin and --mismatch apply to --board only", field="--network")
        net = read_network(args.network, ground=args.ground)
        path = args.conductances or args.edge_state
        option = "--conductances" if args.conductances else "--edge-state"
        k = read_values(path, net.n_edges, option) if path else np.ones(net.n_edges)
        if np.any(k <= 0):
            bad = int(np.flatnonzero(k <= 0)[0])
            raise InputError(
                f"edge {bad}: conductance {k[bad]!r} must be positive (S)",
                source=path,
                field=option,
            )
        return Circuit.linear(net, k), None, args.network
    if args.ground is not None:
        raise InputError(
            "--ground applies to --network only; a board names its ground", field="--ground"
        )
    from learnboard.boards.board_circuit import circuit_for_board
    from learnboard.boards.load import load_board

    board = load_board(args.board)
    names = list(board.nodes)
    if args.conductances:
        if board.has_gates:
            raise InputError(
                "this board has transistor edges; give their gate volts with --edge-state",
                field="--conductances",
            )
        k = read_values(args.conductances, board.n_edges, "--conductances")
        return Circuit.linear(board.network(), k), names, board.name
    if args.edge_state:
        state = read_values(args.edge_state, board.n_edges, "--edge-state")
    else:
        state = _default_state(board)
    circuit = circuit_for_board(board, state, twin=args.twin, mismatch=args.mismatch)
    return circuit, names, board.name


def _default_state(board):
    """Middle tap for digipots, middle of the gate range (or 2.5 V) for transistors."""
    import numpy as np

    state = np.zeros(board.n_edges)
    gr = board.limits.gate_range
    for i, e in enumerate(board.edges):
        part = board.parts.get(e.part) if e.part else None
        if e.kind == "digipot" and part is not None:
            state[i] = (part.n_taps - 1) // 2
        elif e.kind == "transistor":
            state[i] = 0.5 * (gr[0] + gr[1]) if gr else 2.5
    return state


def _node(text: str, names, n_nodes: int, option: str, spec: str) -> int:
    from learnboard.errors import InputError

    text = text.strip()
    if names is not None and text in names:
        return names.index(text)
    try:
        node = int(text)
    except ValueError:
        hint = f" or one of the board's node names ({', '.join(names[:6])}, …)" if names else ""
        raise InputError(
            f"{spec!r}: node {text!r} is not an index 0..{n_nodes - 1}{hint}", field=option
        ) from None
    if not 0 <= node < n_nodes:
        raise InputError(f"{spec!r}: node {node} is outside 0..{n_nodes - 1}", field=option)
    return node


def _volts(text: str, option: str, spec: str) -> float:
    import math

    from learnboard.errors import InputError

    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise InputError(f"{spec!r}: {text!r} is not a voltage in volts", field=option)
    return v


def _fixes(args, names, n_nodes: int) -> list:
    from learnboard.errors import InputError
    from learnboard.physics.solver import Fix, FixDrop

    fixes = []
    for spec in args.fix:
        if spec.count("=") != 1:
            raise InputError(f"{spec!r} must look like NODE=VOLTS, e.g. 3=0.45", field="--fix")
        node, volts = spec.split("=")
        fixes.append(Fix(_node(node, names, n_nodes, "--fix", spec), _volts(volts, "--fix", spec)))
    for spec in args.fix_drop:
        if spec.count("=") != 1 or spec.split("=")[0].count(",") != 1:
            raise InputError(f"{spec!r} must look like I,J=VOLTS, e.g. 0,35=1", field="--fix-drop")
        pair, volts = spec.split("=")
        i, j = (_node(t, names, n_nodes, "--fix-drop", spec) for t in pair.split(","))
        fixes.append(FixDrop(i, j, _volts(volts, "--fix-drop", spec)))
    if not fixes:
        raise InputError(
            "no constraints: without a source every voltage is 0; add --fix NODE=VOLTS or "
            "--fix-drop I,J=VOLTS",
            field="--fix",
        )
    return fixes


# ----------------------------------------------------------------------------- output


def _label(f, names) -> str:
    from learnboard.physics.solver import Fix

    def n(k):
        return names[k] if names else str(k)

    return f"V{n(f.node)}" if isinstance(f, Fix) else f"V{n(f.i)} - V{n(f.j)}"


def _as_dict(sol, circuit, fixes, source, names) -> dict:
    return {
        "source": source,
        "ground": circuit.network.ground,
        "nodes": names,
        "constraints": [
            {"constraint": _label(f, names), "volts": f.volts, "current": float(c)}
            for f, c in zip(fixes, sol.constraint_currents, strict=True)
        ],
        "node_voltages": sol.node_voltages.tolist(),
        "edge_currents": sol.edge_currents.tolist(),
        "drops": sol.drops.tolist(),
        "power": sol.power,
        "co_content": sol.co_content,
        "method": sol.method,
        "iterations": sol.iterations,
        "units": {
            "node_voltages": "V",
            "drops": "V",
            "edge_currents": "A (from the edge's first node to its second)",
            "constraint current": "A pushed into the node (into I, out of J for a drop)",
            "power": "W, sum of I*dV over edges",
            "co_content": "1/2 sum k dV^2, the paper's convention (W when k is in S); "
            "linear networks only",
        },
    }


def _summary(sol, circuit, fixes, source, names) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{source}[/]: {circuit.n_nodes} nodes, {circuit.n_edges} edges, ground "
        f"{names[circuit.network.ground] if names else circuit.network.ground}; "
        f"solved by {sol.method}" + (f" in {sol.iterations} iterations" if sol.iterations else "")
    )
    cons = Table("constraint", "volts", "source current (A)")
    for f, c in zip(fixes, sol.constraint_currents, strict=True):
        cons.add_row(_label(f, names), f"{f.volts:g}", f"{c:.6g}")
    console.print(cons)
    console.print(f"power Σ I·ΔV = [bold]{sol.power:.6g} W[/]")
    if sol.co_content is not None:
        console.print(f"co-content ½ Σ k ΔV² (paper's convention) = {sol.co_content:.6g}")
    v = sol.node_voltages
    console.print(f"node voltages: {v.min():.6g} … {v.max():.6g} V")
    top = np.argsort(-np.abs(sol.edge_currents))[:5]
    edges = Table("edge", "nodes", "drop (V)", "current (A)", title="largest edge currents")
    for e in top:
        i, j = circuit.network.edges[e]
        label = f"{names[i]}→{names[j]}" if names else f"{i}→{j}"
        edges.add_row(str(e), label, f"{sol.drops[e]:.6g}", f"{sol.edge_currents[e]:.6g}")
    console.print(edges)
    console.print("[dim]use --json for every node and edge[/]")
