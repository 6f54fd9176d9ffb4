"""The host and the emulator wired together: the one place a command reaches either a
real board or an emulated one.

    from learnboard.cli.connection import open_board

    with open_board() as conn:                     # emulated gen2-clln, in process
        print(conn.label, conn.hello["fw"], conn.true_state(0).power)
    with open_board("/dev/ttyACM0", board="gen1-digipot") as conn:
        conn.link.call("park")

Neither :mod:`learnboard.host` nor :mod:`learnboard.emulator` imports the other: the
in-process board offers a byte port (``read``/``write``/``close``) on which the host's
:class:`~learnboard.host.link.Link` runs, and its physics as a
:class:`~learnboard.host.truth.TruthProbe`. Both are joined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnboard.emulator.inprocess_board import InProcessBoard
from learnboard.emulator.world import World
from learnboard.host import connect
from learnboard.host.connect import Connection
from learnboard.host.link import Link

from learnboard.boards import Board, load_board
from learnboard.errors import InputError

EMULATED_PREFIX = "emu:"
"""A port ``emu:NAME`` is the emulated board NAME (profile or .toml) in process."""
DEFAULT_BOARD = "gen2-clln"


class LinkedInProcessBoard(InProcessBoard):
    """An in-process emulated board with the host's :class:`Link` on its byte port.

    Args (beyond :class:`InProcessBoard`'s):
        link_timeout: seconds the link waits for a reply before re-sending.
        link_retries: how often the link re-sends an unanswered request.
    """

    def __init__(self, *args: Any, link_timeout: float = 2.0, link_retries: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._link_timeout = link_timeout
        self._link_retries = link_retries
        self._link: Link | None = None

    @property
    def link(self) -> Link:
        """The host's link to this board (created on first use)."""
        if self._link is None:
            self._link = Link(self.byte_port, timeout=self._link_timeout, retries=self._link_retries)
        return self._link

    def stop(self) -> None:
        """Close the link, then stop the firmware."""
        if self._link is not None:
            self._link.close()
        super().stop()

    def __enter__(self) -> LinkedInProcessBoard:
        self.start()
        return self


@dataclass
class InProcessConnection(Connection):
    """A :class:`Connection` to an emulated board in this process, which a caller (a
    study, a test) may also reset or inspect: :attr:`emulator`, :attr:`world`."""

    emulator: LinkedInProcessBoard | None = None

    @property
    def world(self) -> World:
        """The emulated parts and physics."""
        assert self.emulator is not None
        return self.emulator.world


def connect_in_process(emu: LinkedInProcessBoard) -> InProcessConnection:
    """Start ``emu`` (if not yet), say hello and return the connection; closing it stops the board."""
    emu.start()
    try:
        hello = emu.link.hello()
    except BaseException:
        emu.stop()
        raise
    return InProcessConnection(emu.link, hello, emu.board, f"emulated {emu.board.name}", emulated=True,
                               truth=emu, emulator=emu, _closers=[emu.stop])


def open_board(
    port: str | None = None,
    *,
    board: str | Path | Board | None = None,
    seed: int = 0,
    faults: Any = None,
    timeout: float = 2.0,
) -> Connection:
    """Connect to a board and say hello.

    Args:
        port: ``None`` for the emulated default board in process (``gen2-clln`` unless
            ``board`` names another), ``"emu:NAME"`` for an emulated profile or board
            file in process, anything else a pyserial URL or device path.
        board: the description the board should run (profile name, .toml or Board);
            checked against the board's hello for a real port.
        seed, faults: the emulator's seed and fault knobs (emulated boards only).
        timeout: seconds to wait for each reply before a retry.
    """
    if port is None or port.startswith(EMULATED_PREFIX):
        name = port[len(EMULATED_PREFIX):] if port else None
        if name and board is not None:
            raise InputError("give the emulated board either in the port (emu:NAME) or as --board, not both",
                             field="--port")
        desc = board if isinstance(board, Board) else load_board(name or board or DEFAULT_BOARD)
        return connect_in_process(LinkedInProcessBoard(desc, seed=seed, faults=faults, link_timeout=timeout))
    if faults is not None:
        raise InputError("fault injection needs an emulated board; start one with `learnboard emulate` "
                         "and its fault flags", field="--port")
    return connect.open_board(port, board=board, timeout=timeout)
