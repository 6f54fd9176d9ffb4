"""A virtual learning board: the MicroPython VM behind a raw serial pty.

Example::

    from learnboard.emulator.board import VirtualBoard

    with VirtualBoard("~/flash/gen2") as board:
        print(board.port)          # open it like /dev/ttyACM0 (pyserial, mpremote)
        board.hard_reset()         # boot.py, then main.py
        print(board.counters())    # resets, crashes, serial faults per direction
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from learnboard.emulator.serial_faults import SerialFaults
from learnboard.emulator.vm import VMProcess
from learnboard.emulator.vport import PortCounters, VirtualPort

from learnboard.errors import InputError

DEFAULT_HEAP = "192K"


def default_flash_dir(board: str) -> Path:
    """Per-board flash folder in the user's data directory.

    ``$XDG_DATA_HOME/learnboard/flash/<board>`` (``~/.local/share/...`` by default).
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "learnboard" / "flash" / board


class VirtualBoard:
    """A MicroPython board on a pseudo-terminal, backed by the real VM.

    Args:
        flash_dir: the board's persistent filesystem (created if missing).
        board: board description name or file, kept for the device layer (``board``).
        heap: the VM's GC heap (``"192K"``, like a small microcontroller).
        extra_path: folders first on the VM's module path, e.g. the emulated ``machine``
            layer (its ``machine.py`` shadows the emulator's fallback one).
        vm_env: extra environment variables for the VM (e.g. a device socket path).
        seed: seed of the serial fault streams.
        drop_rate, corrupt_rate, dup_rate: per-byte serial fault rates.
        fault_directions: which directions suffer the faults: ``"to_board"`` (host to
            board) and/or ``"to_host"``.
        on_reset: called with the reset kind before each VM boot (see
            :class:`~learnboard.emulator.vport.VirtualPort`).
        executable: the ``micropython`` binary (default: found beside Python or on PATH).
    """

    def __init__(
        self,
        flash_dir: str | os.PathLike,
        *,
        board: str | None = None,
        heap: str = DEFAULT_HEAP,
        extra_path: Sequence[str | os.PathLike] = (),
        vm_env: Mapping[str, str] | None = None,
        seed: int | None = None,
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        dup_rate: float = 0.0,
        fault_directions: Sequence[str] = ("to_board", "to_host"),
        on_reset: Callable[[str], None] | None = None,
        executable: str | None = None,
    ) -> None:
        self.flash_dir = Path(flash_dir).expanduser().resolve()
        if self.flash_dir.exists() and not self.flash_dir.is_dir():
            raise InputError("is not a folder; give a folder for the board's flash", source=str(self.flash_dir), field="--flash")
        bad = set(fault_directions) - {"to_board", "to_host"}
        if bad:
            raise InputError(f"unknown direction(s) {sorted(bad)}; use 'to_board' and/or 'to_host'", field="fault_directions")
        self.board = board
        self.seed = seed
        self.vm = VMProcess(self.flash_dir, heap=heap, extra_path=extra_path, env=vm_env, executable=executable)
        seq_board, seq_host = np.random.SeedSequence(seed).spawn(2)
        rates = {"drop_rate": drop_rate, "corrupt_rate": corrupt_rate, "dup_rate": dup_rate}
        none = {"drop_rate": 0.0, "corrupt_rate": 0.0, "dup_rate": 0.0}
        self._port = VirtualPort(
            self.vm,
            to_board=SerialFaults(**(rates if "to_board" in fault_directions else none), seed=seq_board),
            to_host=SerialFaults(**(rates if "to_host" in fault_directions else none), seed=seq_host),
            on_reset=on_reset,
        )

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> str:
        """Boot the board (boot.py, main.py) and open its port; return the port path."""
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        return self._port.start()

    def stop(self) -> None:
        """Close the port and end the VM; no process is left behind."""
        self._port.stop()

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what a user or test sees -----------------------------------------------------

    @property
    def port(self) -> str:
        """Path of the serial port (a pty), e.g. ``/dev/pts/5``."""
        if self._port.port is None:
            raise RuntimeError("the board is not started")
        return self._port.port

    @property
    def vm_pid(self) -> int | None:
        """Process id of the current VM (changes on every reset)."""
        return self.vm.pid

    @property
    def repl_state(self) -> str:
        """booting, friendly, raw, raw-paste or running."""
        return self._port.state

    @property
    def running(self) -> bool:
        return self._port.running

    @property
    def error(self) -> BaseException | None:
        """What stopped the serial relay, if it stopped on its own."""
        return self._port.error

    def hard_reset(self, timeout: float = 10.0) -> None:
        """Press the reset button: volatile state is lost; boot.py then main.py run."""
        self._port.hard_reset(timeout)

    def counters(self) -> PortCounters:
        """Snapshot: VM starts, soft/hard resets, crashes, interrupts, and per direction
        (``to_board``, ``to_host``) the bytes in/out, dropped, corrupted, duplicated."""
        return self._port.counters()
