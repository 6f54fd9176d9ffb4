"""The optional "truth probe" of an emulated board: its physics, as no real board can tell.

An emulated board (in process, or the VM or CPython board on a pty) knows the true node
voltages, edge currents and power of its networks. A session records that true power
beside the board's own figure, so a run on an emulated board shows how far the board's
view is from the physics. The host needs no emulator for this: whoever wires the two
together (the command line, a study, a test) passes any object with ``true_state(net)``;
a ``learnboard emulate`` board in another process serves it on a Unix socket its port
announcement names (:class:`SocketTruth`); a real board has none (``None``).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from learnboard.errors import LinkError


class TrueState(Protocol):
    """The physics of one network at one moment."""

    node_voltages: np.ndarray  # (N,) V
    edge_currents: np.ndarray  # (E,) A, from a to b
    power: float  # W dissipated in the network
    edge_state: np.ndarray  # taps or gate volts, per edge


@runtime_checkable
class TruthProbe(Protocol):
    """What the host may ask an emulated board beyond its port."""

    def true_state(self, net: int = 0) -> TrueState:
        """The physics of network ``net`` (0: the free network, 1: a twin's clamped one) now."""
        ...


@dataclass
class ProbedState:
    """A :class:`TrueState` as a truth socket sends it."""

    node_voltages: np.ndarray
    edge_currents: np.ndarray
    power: float
    edge_state: np.ndarray


class SocketTruth:
    """The truth probe of a ``learnboard emulate`` board (``emulator/truth_server.py``),
    over the Unix socket ``path``; ``uid`` (hex, the board's hello) must be the one the
    socket's world answers with, or :meth:`connect` refuses it."""

    def __init__(self, path: str, uid: str | None, timeout: float = 30.0) -> None:
        self.path = path
        self.uid = uid
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file = None
        self._lock = threading.Lock()

    def connect(self) -> SocketTruth:
        """Open the socket and check whose world answers (network 0)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise LinkError(f"{self.path}: the emulator's truth probe does not answer: {exc}") from None
        self._sock, self._file = s, s.makefile("rwb")
        first = self._ask(0)
        if first.get("uid") != self.uid:
            self.close()
            raise LinkError(f"{self.path}: the truth probe serves board {first.get('uid')!r}, "
                            f"not this port's {self.uid!r}")
        return self

    def _ask(self, net: int) -> dict:
        with self._lock:
            if self._file is None:
                raise LinkError(f"{self.path}: the truth probe is closed")
            try:
                self._file.write(json.dumps({"net": int(net)}).encode() + b"\n")
                self._file.flush()
                line = self._file.readline()
            except OSError as exc:
                raise LinkError(f"{self.path}: the emulator's truth probe failed: {exc}") from None
        if not line:
            raise LinkError(f"{self.path}: the emulator closed its truth probe (stopped?)")
        d = json.loads(line)
        if "error" in d:
            raise LinkError(f"{self.path}: {d['error']}")
        return d

    def true_state(self, net: int = 0) -> ProbedState:
        """The physics of network ``net`` now (see :class:`TruthProbe`)."""
        d = self._ask(net)
        return ProbedState(np.asarray(d["node_voltages"], float), np.asarray(d["edge_currents"], float),
                           float(d["power"]), np.asarray(d["edge_state"], float))

    def close(self) -> None:
        with self._lock:
            for x in (self._file, self._sock):
                if x is not None:
                    try:
                        x.close()
                    except OSError:
                        pass
            self._file = self._sock = None
