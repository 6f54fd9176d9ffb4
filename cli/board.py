"""``learnboard board``: list, show, check and compile board descriptions."""

from __future__ import annotations

import argparse

HELP = "show, check and compile board descriptions"
DESCRIPTION = """\
Board descriptions (TOML, see docs/board-format.md) say everything about a board:
nodes, edges and their parts, wiring to the microcontroller, gains, rails, safety
limits and default learning parameters. The host compiles them into board.json, the
canonical form the firmware reads; its sha256 identifies the board everywhere."""
EPILOG = """\
examples:
  learnboard board list
  learnboard board show gen2-clln --plot gen2.png
  learnboard board check my-board.toml
  learnboard board compile gen1-digipot -o board.json"""

_SUB = {
    "list": ("list the board profiles shipped with learnboard", "  learnboard board list"),
    "show": ("print a summary of a board (nodes, edges, ports, wiring, limits, hash)",
             "  learnboard board show gen2-clln\n  learnboard board show my-board.toml --plot board.png"),
    "check": ("validate a board description (or a compiled board.json)",
              "  learnboard board check my-board.toml\n  learnboard board check board.json\n"
              "  learnboard board check gen2-clln --ranges"),
    "compile": ("compile a board into board.json for the firmware",
                "  learnboard board compile gen2-clln -o board.json"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="board_command", metavar="ACTION")
    parsers = {}
    for name, (help_text, example) in _SUB.items():
        parsers[name] = sub.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
            epilog="example:\n" + example, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("show", "check", "compile"):
        parsers[name].add_argument("board", metavar="NAME|FILE",
                                   help="a shipped profile name (e.g. gen2-clln) or a .toml file")
    parsers["show"].add_argument("--plot", metavar="OUT.png",
                                 help="also draw the network (inputs, outputs, edge kinds)")
    parsers["show"].add_argument("--all-lines", action="store_true",
                                 help="list every expander bit and DAC channel in the wiring table")
    parsers["check"].add_argument("--ranges", action="store_true",
                                  help="list every integer intermediate of the firmware's "
                                  "learning step and drivers with its worst case and limit")
    parsers["compile"].add_argument("-o", "--output", default="board.json", metavar="FILE",
                                    help="where to write the compiled board (default: board.json)")
    parser.set_defaults(_board_parser=parser)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "board_command", None)
    if action is None:
        args._board_parser.print_help()
        return 1
    return {"list": _list, "show": _show, "check": _check, "compile": _compile}[action](args)


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=120)


def _list(args) -> int:
    from rich.table import Table

    from learnboard.boards import compile_board, load_board, profile_names

    table = Table(title="shipped board profiles")
    for col in ("name", "networks", "nodes", "edges", "mcu", "id", "description"):
        table.add_column(col)
    for name in profile_names():
        board = load_board(name)
        table.add_row(name, board.networks, str(board.n_nodes), str(board.n_edges),
                      board.microcontroller, compile_board(board).short_id, board.description)
    _console().print(table)
    return 0


def _check(args) -> int:
    from learnboard.boards import CompiledBoard, compile_board, load_board
    from learnboard.boards.ranges import check_ranges, headroom_line
    from learnboard.boards.validate import power_report

    if str(args.board).endswith(".json"):
        compiled = CompiledBoard.read(args.board)
        check_ranges(compiled.body, str(args.board))
        print(f"ok: {args.board} is a compiled board {compiled.name!r}, sha256 {compiled.sha256}")
    else:
        board = load_board(args.board)
        compiled = compile_board(board)
        print(f"ok: {board.source} describes board {board.name!r} ({board.n_nodes} nodes, "
              f"{board.n_edges} edges, {board.networks}), sha256 {compiled.sha256}")
        print(power_report(board))
    print(headroom_line(compiled.body))
    if args.ranges:
        _ranges_table(compiled.body)
    return 0


def _ranges_table(body: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from learnboard.boards.ranges import intermediates

    table = Table(title="integer intermediates of the learning step and drivers (worst case)")
    for col, justify in (("firmware code", "left"), ("worst case", "right"),
                         ("limit", "right"), ("use", "right"), ("set by", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "set by")
    for x in sorted(intermediates(body), key=lambda x: -x.ratio):
        worst = f"{x.lo:,}..{x.hi:,}" if x.lo < 0 else f"{x.hi:,}"
        limit = "±2^30" if x.small_int else f"{x.lo_limit:,}..{x.hi_limit:,}"
        table.add_row(escape(x.name), worst, limit, f"{x.ratio:.4f}",
                      escape(", ".join(x.fields) or "firmware"))
    from rich.console import Console

    Console(highlight=False, soft_wrap=False, width=200).print(table)


def _compile(args) -> int:
    from learnboard.boards import compile_board, load_board

    compiled = compile_board(load_board(args.board))
    path = compiled.write(args.output)
    print(f"wrote {path} ({len(compiled.to_bytes())} bytes): board {compiled.name!r}, "
          f"sha256 {compiled.sha256}")
    return 0


def _show(args) -> int:
    from learnboard.boards import compile_board, load_board
    from learnboard.boards.draw import plot_board
    from learnboard.boards.summary import render

    board = load_board(args.board)
    compiled = compile_board(board)
    render(board, compiled, _console(), all_lines=args.all_lines)
    from learnboard.boards.ranges import headroom_line
    from learnboard.boards.validate import power_report

    print(power_report(board))
    print(headroom_line(compiled.body))
    if args.plot:
        path = plot_board(board, args.plot)
        print(f"plot written to {path}")
    return 0
