"""Board descriptions: load and validate TOML, compile to the firmware's canonical JSON.

Public API::

    from learnboard.boards import load_board, compile_board, circuit_for_board
    board = load_board("gen2-clln")          # a shipped profile, or a .toml path
    compiled = compile_board(board)          # canonical JSON + sha256
    compiled.write("board.json")             # the file the firmware reads

``circuit_for_board`` lives in :mod:`learnboard.boards.board_circuit` (it imports the physics).
"""

from learnboard.boards.compile import CompiledBoard, board_hash, compile_board
from learnboard.boards.load import load_board, parse_board, profile_names, profile_path
from learnboard.boards.schema import Board, Line
from learnboard.boards.validate import pin_map, worst_case_current


def circuit_for_board(board, edge_state, twin=0, mismatch=None):
    """See :func:`learnboard.boards.board_circuit.circuit_for_board` (imported lazily)."""
    from learnboard.boards.board_circuit import circuit_for_board as build

    return build(board, edge_state, twin, mismatch)


__all__ = [
    "Board",
    "CompiledBoard",
    "Line",
    "board_hash",
    "circuit_for_board",
    "compile_board",
    "load_board",
    "parse_board",
    "pin_map",
    "profile_names",
    "profile_path",
    "worst_case_current",
]
