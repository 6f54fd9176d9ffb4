"""Reach a board on a serial port (a real one or a ``learnboard emulate`` pty) and say hello.

    from learnboard.host.connect import open_board

    with open_board("/dev/ttyACM0", board="gen1-digipot") as conn:
        print(conn.label, conn.hello["fw"])
        conn.link.call("park")

(The command line's :func:`learnboard.cli.connection.open_board` adds the emulated board in
process, for no port or ``emu:NAME``; it hands this module's :class:`Connection` the
emulator as a :class:`~learnboard.host.truth.TruthProbe`.)

A ``board`` given with a real port is checked against the description the board runs
(its hash in hello); a mismatch is an error that says to run ``learnboard flash``.

A board whose serial port drops when it resets (USB: a watchdog reset, ``machine.reset()``)
is followed to the port it comes back on, found by its identity (hello's board name and
description hash); the link then reports a ``boot`` event, as for any reset.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from learnboard.boards import Board, compile_board, load_board
from learnboard.errors import LearnboardError, LinkError

from .link import Link, LinkTimeout, OldFirmware
from .truth import TrueState, TruthProbe


@dataclass
class Connection:
    """A board reached by the host: its link, hello, description and (for an emulated
    board, when the caller has it) the truth probe of its physics."""

    link: Link
    hello: dict
    board: Board | None
    label: str
    emulated: bool = False
    truth: TruthProbe | None = None  # the emulator's physics; None for a real board
    _closers: list = field(default_factory=list, repr=False)

    def true_state(self, net: int = 0) -> TrueState | None:
        """The emulator's physics of network ``net`` now (None for a real board)."""
        return None if self.truth is None else self.truth.true_state(net)

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # closing must not mask the error that led here
                pass
        self._closers.clear()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load(board: str | Path | Board | None) -> Board | None:
    if board is None or isinstance(board, Board):
        return board
    return load_board(board)


def _check_description(hello: dict, board: Board | None, label: str) -> None:
    """Refuse a board whose description is not the one the host was given."""
    if board is None:
        return
    expected = compile_board(board).sha256
    got = hello.get("desc_hash")
    if got != expected:
        raise LearnboardError(
            f"the board description on {label} ({hello.get('board')!r}, {str(got)[:8]}) differs from "
            f"{board.name!r} ({expected[:8]}); run `learnboard flash --port {label} --board {board.name}` "
            "to load it onto the board")


def open_board(
    port: str,
    *,
    board: str | Path | Board | None = None,
    timeout: float = 2.0,
) -> Connection:
    """Connect to the board on a serial port and say hello.

    Args:
        port: a pyserial URL or device path (a ``learnboard emulate`` pty too).
        board: the description the board should run (profile name, .toml or Board);
            checked against the board's hello.
        timeout: seconds to wait for each reply before a retry.
    """
    desc = _load(board)
    from .serial_ports import current_port

    # an emulated board that reset since the caller named its port (e.g. a calibration
    # fetched from it just before) is on the port its emulator announced
    port = current_port(port)
    who: dict = {}

    def follow(old: str) -> str:
        # a reset dropped the port (USB): find the board by its identity from hello
        from .serial_ports import find_again

        ident = (who["board"], who["desc_hash"], who["uid"]) if who else None
        return find_again(old, identity=ident, since=time.time() - 0.5)

    # pyserial's `exclusive` (an flock on the device, POSIX only): a program that asks for
    # it too (mpremote, another learnboard) is refused the port while this link holds it
    excl = {"exclusive": True} if os.name == "posix" and "://" not in port else {}
    link = Link.open(port, timeout=timeout, follow=follow, **excl)
    try:
        hello = link.hello(probe_old=True)
        who.update(board=hello.get("board"), desc_hash=hello.get("desc_hash"), uid=hello.get("uid"))
    except OldFirmware as exc:
        link.close()
        raise OldFirmware(f"{port}: the board runs protocol-{exc.protocol} firmware; run "
                          f"`learnboard flash --port {port}` to update it", exc.protocol) from None
    except LinkTimeout as exc:
        at_repl = link.repl_prompt()
        link.close()
        if at_repl:  # no firmware runs: main.py gone (a flash cut short), or left at the REPL
            raise LinkError(f"{port}: the board is at MicroPython's REPL, not running the learnboard firmware "
                            "(an interrupted `learnboard flash` or `learnboard calibrate`, or `learnboard repl`, "
                            f"leaves it there); run `learnboard flash --port {port}`") from exc
        raise LinkError(f"{port}: {exc} If the board runs no learnboard firmware yet, run "
                        f"`learnboard flash --port {port}`.") from exc
    except LinkError as exc:
        link.close()
        said = str(exc) if str(exc).endswith((".", "?")) else f"{exc}."
        raise LinkError(f"{port}: {said} If the board runs no learnboard firmware yet, run "
                        f"`learnboard flash --port {port}`.") from exc
    except BaseException:
        link.close()
        raise
    try:
        _check_description(hello, desc, port)
        if desc is None and hello.get("board"):
            try:
                desc = load_board(hello["board"])
            except LearnboardError:
                desc = None  # a board file we do not have: the caller can pass --board
            if desc is not None and compile_board(desc).sha256 != hello.get("desc_hash"):
                desc = None  # same name, other wiring: do not guess
    except BaseException:
        link.close()
        raise
    truth = _emulated_truth(port, hello)
    closers = [link.close] + ([truth.close] if truth is not None else [])
    return Connection(link, hello, desc, port, truth=truth, _closers=closers)


def _emulated_truth(port: str, hello: dict):
    """The truth probe a ``learnboard emulate`` board on ``port`` serves (its port
    announcement names the socket; the socket's world must be the board that said hello),
    None for a real board or an emulator without one."""
    from learnboard.board_id import is_emulated

    if not is_emulated(hello.get("uid")):
        return None
    from .serial_ports import emulated_truth
    from .truth import SocketTruth

    path = emulated_truth(port)
    if path is None:
        return None
    try:
        return SocketTruth(path, hello.get("uid")).connect()
    except LinkError:
        return None
