"""Rich tables summarising a board (``learnboard board show``)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from learnboard.boards.compile import CompiledBoard
from learnboard.boards.schema import (
    Board,
    DacGateDriver,
    DigipotPart,
    PulseGateDriver,
    SpiPotDriver,
    X9cDriver,
)
from learnboard.boards.validate import pin_map, worst_case_current


def _net_names(board: Board) -> list[str]:
    return ["free", "clamped"] if board.n_nets == 2 else ["network"]


def _driver(d) -> str:
    if isinstance(d, X9cDriver):
        return f"CS {d.cs}"
    if isinstance(d, SpiPotDriver):
        return f"{d.bus} CS {d.cs} w{d.wiper}"
    if isinstance(d, PulseGateDriver):
        return f"+{d.charge} -{d.discharge}"
    if isinstance(d, DacGateDriver):
        return f"DAC {d.dac}"
    return "-"


def _port_nodes(board: Board, p) -> str:
    if p.b is None:
        return board.nodes[p.a]
    return f"{board.nodes[p.a]} - {board.nodes[p.b]}"


def render(board: Board, compiled: CompiledBoard, console: Console, *, all_lines: bool = False) -> None:
    """Print the summary tables of ``board`` to ``console``."""
    nets = _net_names(board)
    head = Table(title=f"board {board.name}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("description", board.description or "-")
    head.add_row("file", board.source)
    head.add_row("microcontroller", board.microcontroller)
    head.add_row("networks", f"{board.networks} ({', '.join(nets)})")
    head.add_row("size", f"{board.n_nodes} nodes, {board.n_edges} edges "
                 f"({', '.join(f'{n} {k}' for k, n in sorted(Counter(e.kind for e in board.edges).items()))})")
    adc = board.adc
    head.add_row("ADC", f"{adc.type} {adc.part}".strip() + f", {adc.bits} bit, {adc.vref:g} V ref, "
                 f"x{adc.oversample} oversampling, {adc.settle_us:g} us settle")
    head.add_row("rails", ", ".join(f"{k} {v:g} V" for k, v in board.rails.items()) or "-")
    lr = board.learning
    head.add_row("learning", f"rule {lr.rule}, alpha {lr.alpha:g}, eta {lr.eta:g}, "
                 f"lambda {lr.lam:g}, task {lr.task!r}")
    if board.has_gates:
        rate = "annealed 1.0 -> 0.2" if lr.anneal else f"constant {lr.alpha:g}"
    else:
        rate = f"{lr.alpha:g}"
    head.add_row("session defaults", f"init {lr.init}, learning rate {rate}, null offset "
                 + (f"every {lr.null_offset_every} steps" if lr.null_offset_every else "off"))
    head.add_row("sha256", compiled.sha256)
    head.add_row("id", compiled.short_id)
    console.print(head)

    nodes = Table(title="nodes")
    nodes.add_column("#", justify="right")
    nodes.add_column("node")
    nodes.add_column("role")
    for n in nets:
        nodes.add_column(f"read ({n})")
    roles = {board.ground: "ground"}
    for p in board.inputs:
        roles[p.a] = f"input {p.name}" + (f" (fixed {p.fixed:g} V)" if p.fixed is not None else "")
        if p.b is not None and p.b != board.ground:
            roles[p.b] = f"input {p.name} (-)"
    for p in board.outputs:
        roles[p.a] = f"output {p.name}"
        if p.b is not None and p.b != board.ground:
            roles[p.b] = f"output {p.name} (-)"
    for i, name in enumerate(board.nodes):
        reads = []
        for net in range(board.n_nets):
            ch = board.node_channel(i, net)
            reads.append("-" if ch is None else
                         f"{ch.mux}[{ch.channel}] x{board.muxes[ch.mux].gain:g}")
        nodes.add_row(str(i), name, roles.get(i, ""), *reads)
    console.print(nodes)

    edges = Table(title="edges")
    for col in ("#", "edge", "nodes (a - b)", "kind", "part", "worst-case I"):
        edges.add_column(col, justify="right" if col in ("#", "worst-case I") else "left")
    for n in nets:
        edges.add_column(f"driver ({n})")
    if board.has_gates:
        for n in nets:
            edges.add_column(f"gate read ({n})")
    for i, e in enumerate(board.edges):
        part = e.part or f"{e.resistance:g} ohm"
        row = [str(i), e.name, f"{board.nodes[e.a]} - {board.nodes[e.b]}", e.kind, part,
               f"{worst_case_current(board, i) * 1e3:.3g} mA"]
        row += [_driver(d) for d in e.drivers] or ["-"] * board.n_nets
        if board.has_gates:
            for net in range(board.n_nets):
                ch = board.gate_channel(i, net)
                row.append("-" if ch is None else f"{ch.mux}[{ch.channel}]")
        edges.add_row(*row)
    console.print(edges)

    ports = Table(title="inputs and outputs")
    for col in ("port", "name", "nodes", *[f"driver ({n})" for n in nets], "switch", "note"):
        ports.add_column(col)
    for kind, group in (("input", board.inputs), ("output", board.outputs)):
        for p in group:
            drivers = [str(x) if x is not None else "floats" for x in p.drive]
            if p.drive_b:
                drivers = [f"{d} / {x if x is not None else 'floats'}"
                           for d, x in zip(drivers, p.drive_b, strict=True)]
            note = []
            if p.fixed is not None:
                note.append(f"fixed {p.fixed:g} V")
            if p.common is not None:
                note.append(f"common {p.common:g} V")
            ports.add_row(kind, p.name, _port_nodes(board, p), *drivers,
                          str(p.switch) if p.switch else "-", ", ".join(note))
    console.print(ports)

    wiring = Table(title="wiring (pins and channels)")
    for col in ("resource", "function", "field"):
        wiring.add_column(col)
    grouped: Counter = Counter()
    for label, what, field in pin_map(board):
        if not all_lines and label.startswith(("expander", "dac ")):
            grouped[label.rsplit(".", 1)[0]] += 1
            if label.startswith("dac "):
                wiring.add_row(label, what, field)
            continue
        wiring.add_row(label, what, field)
    for name, x in board.expanders.items():
        wiring.add_row(f"expander {name}", f"{x.part}: {grouped.get(f'expander {name}', 0)} of "
                       f"{x.bits} bits used (--all-lines lists them)", f"expanders.{name}")
    console.print(wiring)

    muxes = Table(title="multiplexers and front-end gains")
    for col in ("mux", "part", "network", "reads", "ADC ch", "gain", "full scale in", "ADC at max"):
        muxes.add_column(col)
    for m in board.muxes.values():
        span = board.limits.max_node_volts if m.nodes else board.limits.gate_range[1]
        reads = f"{sum(n >= 0 for n in m.nodes)} nodes" if m.nodes else \
            f"{sum(g >= 0 for g in m.gates)} gates"
        muxes.add_row(m.name, m.part, nets[m.net], reads, str(m.adc_channel), f"x{m.gain:g}",
                      f"{adc.vref / m.gain:.3g} V", f"{span:g} V -> {span * m.gain:.3g} V")
    console.print(muxes)

    lim = board.limits
    limits = Table(title="safety limits", show_header=False)
    limits.add_column(style="bold")
    limits.add_column()
    limits.add_row("max node voltage", f"{lim.max_node_volts:g} V")
    worst = max(worst_case_current(board, i) for i in range(board.n_edges))
    limits.add_row("max edge current", f"{lim.max_edge_amps * 1e3:g} mA (worst case on this board "
                   f"{worst * 1e3:.3g} mA)")
    if lim.gate_range:
        limits.add_row("gate range", f"{lim.gate_range[0]:g} .. {lim.gate_range[1]:g} V")
    if lim.tap_range:
        limits.add_row("tap range", f"{lim.tap_range[0]} .. {lim.tap_range[1]}")
    for name, part in board.parts.items():
        rating = f"{part.i_max * 1e3:g} mA"
        if isinstance(part, DigipotPart):
            rating += f", {part.n_taps} taps {part.taper} {part.r_min:g}..{part.r_max:g} ohm"
        else:
            rating += f", gate <= {part.vg_max:g} V"
        limits.add_row(f"part {name}", rating)
    limits.add_row("reason", lim.reason)
    console.print(limits)
