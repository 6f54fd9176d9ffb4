"""The truth probe of a ``learnboard emulate`` board, for a host in another process.

An emulated board on a pseudo-terminal knows its true physics, but the host that opens
the pty is another process: this serves :meth:`true_state` on a Unix socket in the
private run-time folder (0700, the emulated-port announcements' folder), and the
announcement names it (``truth``), so ``learnboard train --port PTY`` records the true
power as it does on the in-process board. A real board has no such socket.

Wire: one JSON object per line each way. ``{"net": N}`` is answered with
``{"uid": hex, "board": name, "node_voltages": [...], "edge_currents": [...],
"power": W, "edge_state": [...]}``; a bad request with ``{"error": text}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

MAX_LINE = 4096  # a request is a few bytes: anything longer is not a host of this protocol


class TruthServer:
    """Serve ``board.true_state(net)`` (a VMBoard or CPythonBoard) on ``path``.

    Args:
        board: the emulated board (its ``world`` gives ``uid`` and the board's name).
        path: the socket's path (its folder must be private: it is not checked here).
    """

    def __init__(self, board: Any, path: str | Path) -> None:
        self.board = board
        self.path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket a killed emulator of this pid left behind
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock.listen(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="truth-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed by close()
                return
            threading.Thread(target=self._serve, args=(conn,), name="truth-client",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            while not self._stop.is_set():
                line = f.readline(MAX_LINE)
                if not line or not line.endswith(b"\n"):
                    return
                f.write(json.dumps(self._answer(line)).encode() + b"\n")
                f.flush()

    def _answer(self, line: bytes) -> dict:
        try:
            req = json.loads(line)
            net = req["net"]
        except (ValueError, KeyError, TypeError):
            return {"error": 'expected {"net": N}'}
        world = self.board.world
        if type(net) is not int or not 0 <= net < world.board.n_nets:
            return {"error": f"net {net!r}: the board has networks 0..{world.board.n_nets - 1}"}
        ts = self.board.true_state(net)
        return {"uid": world.uid.hex(), "board": world.board.name,
                "node_voltages": ts.node_voltages.tolist(),
                "edge_currents": ts.edge_currents.tolist(), "power": float(ts.power),
                "edge_state": ts.edge_state.tolist()}

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
