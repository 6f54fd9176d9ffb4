"""The fast in-process board on a serial port: ``learnboard emulate --vm cpython``.

The unchanged firmware runs under CPython (:class:`~learnboard.emulator.inprocess_board.InProcessBoard`)
and its byte port is relayed to a raw pseudo-terminal, which host tools open exactly like
``/dev/ttyACM0``. There is **no MicroPython REPL** on this port: only the learnboard
protocol answers, so ``mpremote`` (and ``learnboard flash``) cannot work with it; the
firmware runs the description given to the emulator, not a flash folder.
"""

from __future__ import annotations

import atexit
import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable

from learnboard.emulator.brownout import BrownOuts
from learnboard.emulator.inprocess_board import InProcessBoard
from learnboard.emulator.serial_faults import SerialFaults
from learnboard.emulator.world import Faults, TrueState, World

from learnboard.boards import Board


class CPythonBoard:
    """An in-process emulated board behind a raw pty.

    Args:
        board: a profile name, a board .toml or a loaded Board.
        seed: seed of the world and of the serial fault streams.
        faults: the world's fault knobs.
        brownouts: power losses on the virtual clock (checked every few ms of real time,
            so a brown-out lands within a few learning steps of its virtual time).
        serial_faults: ``(to_board, to_host)`` faulty lines.
        cost_model: what the firmware's own Python costs on the virtual clock
            (``"rp2040"``, the default, or ``"zero"``).
    """

    def __init__(self, board="gen2-clln", *, seed: int | None = None, faults: Faults | None = None,
                 brownouts: BrownOuts | None = None,
                 serial_faults: tuple[SerialFaults, SerialFaults] | None = None,
                 world_factory: Callable[[Board], World] | None = None,
                 cost_model: str | None = None) -> None:
        self.inprocess = InProcessBoard(board, seed=0 if seed is None else seed, faults=faults,
                                        serial_faults=serial_faults, world_factory=world_factory,
                                        cost_model=cost_model)
        self.board = self.inprocess.board
        self.world = self.inprocess.world
        self.brownouts = brownouts
        self.power_cycles = 0
        self.port: str | None = None
        self.error: BaseException | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> str:
        """Boot the firmware and open the port; return its path."""
        self.inprocess.start()
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        for target, name in ((self._to_board, "to-board"), (self._to_host, "to-host"),
                             (self._power, "power")):
            t = threading.Thread(target=self._guard(target), name=f"lb-cpython-port {name}", daemon=True)
            t.start()
            self._threads.append(t)
        atexit.register(self.stop)
        return self.port

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._threads = []
        self.inprocess.stop()
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self) -> CPythonBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads) and self.inprocess.running

    def true_state(self, net: int = 0) -> TrueState:
        return self.inprocess.true_state(net)

    # -- relay threads --------------------------------------------------------------

    def _guard(self, target):
        def run():
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported through .error/.running
                if not self._stop.is_set():
                    self.error = exc
                    self._stop.set()
        return run

    def _to_board(self) -> None:
        end = self.inprocess.byte_port
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    continue
                except OSError:  # no host has the port open (EIO): wait for one
                    time.sleep(0.05)
                    continue
                if data:
                    end.write(data)

    def _to_host(self) -> None:
        end = self.inprocess.byte_port  # reads block up to its timeout (50 ms)
        while not self._stop.is_set():
            data = end.read(4096)
            while data and not self._stop.is_set():
                _, ready, _ = select.select([], [self._master], [], 0.1)
                if ready:
                    n = os.write(self._master, data)
                    data = data[n:]

    def _power(self) -> None:
        sched = self.brownouts
        if not sched:
            self._stop.wait()
            return
        clock = self.world.clock
        while not self._stop.wait(0.002):
            if sched.due(clock.now_us):
                self.inprocess.reset("power-on")
                self.power_cycles += 1
