"""A virtual learning board: the MicroPython VM behind a raw serial pty.

Example::

    from learnboard.emulator.vm_board import VMBoard

    with VMBoard("~/flash/gen2", board="gen2-clln", seed=1) as board:
        print(board.port)          # open it like /dev/ttyACM0 (pyserial, mpremote)
        board.hard_reset()         # boot.py, then main.py
        print(board.counters())    # resets, crashes, serial faults per direction
        print(board.true_state().power)   # watts in the emulated network (physics)

With a board description the VM's ``machine`` drives an emulated analog world
(:class:`~learnboard.emulator.world.World`, served by
:class:`~learnboard.emulator.world_server.WorldServer` on a Unix socket named by the VM's
``LB_WORLD``); without one the board is a plain MicroPython board with no parts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from learnboard.emulator.brownout import BrownOuts
from learnboard.emulator.cost_model import HOST_SILENT_S, CostModel, host_env
from learnboard.emulator.cost_model import cost_model as get_cost_model
from learnboard.emulator.serial_faults import SerialFaults
from learnboard.emulator.vm import VMProcess, micropython_executable
from learnboard.emulator.vport import PortCounters, VirtualPort
from learnboard.emulator.world import Faults, TrueState, World
from learnboard.emulator.world_server import WorldServer

from learnboard.boards import Board, load_board
from learnboard.emulated_ports import announce_emulated
from learnboard.errors import InputError

DEFAULT_BOARD = "gen2-clln"


def board_key(board: str | None) -> str:
    """Folder name of a board's default flash: the profile name or the file's stem."""
    if not board:
        return DEFAULT_BOARD
    path = Path(board)
    return path.stem if path.suffix == ".toml" or path.exists() else board


def default_flash_dir(board: str) -> Path:
    """Per-board flash folder in the user's data directory.

    ``$XDG_DATA_HOME/learnboard/flash/<board>`` (``~/.local/share/...`` by default).
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "learnboard" / "flash" / board


class VMBoard:
    """A MicroPython board on a pseudo-terminal, backed by the real VM.

    Args:
        flash_dir: the board's persistent filesystem (created if missing).
        board: board description: a profile name, a ``.toml`` file or a loaded
            :class:`~learnboard.boards.Board`. Given, the VM's ``machine`` drives an
            emulated :class:`World` of that board (:attr:`world`); ``None``: a plain
            MicroPython board without analog parts.
        heap: the VM's GC heap (default: the board's 192 KB as this VM needs it,
            :func:`~learnboard.emulator.vm.board_heap`).
        extra_path: folders first on the VM's module path, e.g. the emulated ``machine``
            layer (its ``machine.py`` shadows the emulator's fallback one).
        vm_env: extra environment variables for the VM (e.g. a device socket path).
        seed: seed of the world (device spreads, noise) and of the serial fault streams
            (``None``: world seed 0, fresh serial fault streams).
        faults: fault knobs of the world (stuck edges, dead ADC inputs, noise, leakage).
        brownouts: power losses on the world's virtual clock
            (:class:`~learnboard.emulator.brownout.BrownOuts`); needs a board.
        drop_rate, corrupt_rate, dup_rate: per-byte serial fault rates.
        insert_rate: random bytes per second inserted into the line (a noisy cable, a
            second program writing to the port), on the relay's clock.
        fault_directions: which directions suffer the faults: ``"to_board"`` (host to
            board) and/or ``"to_host"``.
        on_reset: called with the reset kind before each VM boot (see
            :class:`~learnboard.emulator.vport.VirtualPort`).
        replug: every reset but a soft one drops the serial port and opens a new pty, as
            a board's USB port vanishes when the chip resets (:attr:`port` then names
            the new one; ``on_port_change`` is told it).
        on_port_change: called with the new port path after a replug.
        executable: the MicroPython VM binary (default: ``$LEARNBOARD_MICROPYTHON``, else
            the installed ``micropython``; see :func:`~learnboard.emulator.vm.micropython_executable`).
        world_factory: builds the :class:`World` from the board (e.g. a calibrated twin,
            :func:`learnboard.emulator.twin.twin_factory`); ``seed`` and ``faults`` are
            then the factory's business.
        cost_model: what the firmware's own Python costs on the virtual clock
            (``"rp2040"``, the default, or ``"zero"``; :mod:`learnboard.emulator.cost_model`).
    """

    def __init__(
        self,
        flash_dir: str | os.PathLike,
        *,
        board: str | os.PathLike | Board | None = None,
        faults: Faults | None = None,
        brownouts: BrownOuts | None = None,
        heap: str | None = None,
        extra_path: Sequence[str | os.PathLike] = (),
        vm_env: Mapping[str, str] | None = None,
        seed: int | None = None,
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        dup_rate: float = 0.0,
        insert_rate: float = 0.0,
        fault_directions: Sequence[str] = ("to_board", "to_host"),
        on_reset: Callable[[str], None] | None = None,
        executable: str | None = None,
        world_factory: Callable[[Board], World] | None = None,
        cost_model: str | CostModel | None = None,
        replug: bool = True,
        on_port_change: Callable[[str], None] | None = None,
    ) -> None:
        executable = micropython_executable(executable)  # a missing VM fails before anything starts
        self.flash_dir = Path(flash_dir).expanduser().resolve()
        if self.flash_dir.exists() and not self.flash_dir.is_dir():
            raise InputError("is not a folder; give a folder for the board's flash", source=str(self.flash_dir), field="--flash")
        bad = set(fault_directions) - {"to_board", "to_host"}
        if bad:
            raise InputError(f"unknown direction(s) {sorted(bad)}; use 'to_board' and/or 'to_host'", field="fault_directions")
        self.board: Board | None = None if board is None else board if isinstance(board, Board) else load_board(board)
        self.seed = seed
        self.world: World | None = None
        """The emulated parts and physics (true state for tests); None without a board."""
        self._server: WorldServer | None = None
        self._sock_dir: str | None = None
        self.cost_model = get_cost_model(cost_model)
        env = dict(vm_env or {})
        env["LB_COST"] = self.cost_model.env()
        env["LB_HOST"] = host_env()
        if self.board is not None:
            self.world = (world_factory(self.board) if world_factory else
                          World(self.board, seed=0 if seed is None else seed, faults=faults))
            env["LB_UID"] = self.world.uid.hex()  # the VM's machine.unique_id()
            # a short private folder: Unix socket paths are limited to ~107 bytes
            self._sock_dir = tempfile.mkdtemp(prefix="lb-emu-")
            env["LB_WORLD"] = os.path.join(self._sock_dir, "world.sock")
        if brownouts and self.world is None:
            raise InputError("brown-outs need a board description (--board)", field="--brownout-at")
        self._brownouts: BrownOuts = brownouts or BrownOuts()
        if self.world is not None:
            self.world.clock.on_advance(self._clock_moved, self._cut_from)
            self.world.watchdog.on_expire = self._watchdog_fired
        self._user_on_reset = on_reset
        self._on_port_change = on_port_change
        self._announced = None
        self._stopped = False
        self.ports: list[str] = []
        """Every path the serial port has had, the current one last (a host that held an
        old one follows the board by this list)."""
        self._idle_carry = 0.0  # µs of prompt time not yet on the clock
        self.vm = VMProcess(self.flash_dir, heap=heap, extra_path=extra_path, env=env, executable=executable)
        seq_board, seq_host = np.random.SeedSequence(seed).spawn(2)
        rates = {"drop_rate": drop_rate, "corrupt_rate": corrupt_rate, "dup_rate": dup_rate,
                 "insert_rate": insert_rate}
        none = dict.fromkeys(rates, 0.0)
        self._port = VirtualPort(
            self.vm,
            to_board=SerialFaults(**(rates if "to_board" in fault_directions else none), seed=seq_board),
            to_host=SerialFaults(**(rates if "to_host" in fault_directions else none), seed=seq_host),
            on_reset=self._on_reset,
            replug=replug,
            on_port_change=self._port_changed,
            on_idle=self._port_idle,
            firmware_waits=self._firmware_waits,
        )

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> str:
        """Boot the board (boot.py, main.py) and open its port; return the port path."""
        self._stopped = False
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        if self.world is not None and self._server is None:
            self._server = WorldServer(self.world, self.vm.env["LB_WORLD"])
        try:
            port = self._port.start()
            self.ports.append(port)
            self._announce()
            return port
        except BaseException:
            self._close_world()
            raise

    def stop(self) -> None:
        """Close the port and end the VM; no process is left behind."""
        self._stopped = True  # a replug during the stop announces nothing
        if self._server is not None:
            # the power goes first: a program waiting on the world (a sleep while a watchdog
            # runs) gets no answer, so nothing after that point runs while the VM is ended
            with self._server.lock:
                self._server.cut()
        self._port.stop()
        self._close_world()
        if self._announced is not None:
            self._announced.unlink(missing_ok=True)
            self._announced = None

    def _announce(self) -> None:
        """Tell hosts where the board's port is now (``learnboard ports``; a host that
        held an old path follows the board by it)."""
        if self._stopped:
            return
        name = self.board.name if self.board is not None else "plain MicroPython"
        self._announced = announce_emulated(self.ports[-1], name, previous=self.ports[:-1],
                                            key=f"vb{id(self):x}")

    def _close_world(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None

    @property
    def brownouts(self) -> BrownOuts:
        """Power losses to come (on the world's virtual clock); may be replaced."""
        return self._brownouts

    @brownouts.setter
    def brownouts(self, value: BrownOuts) -> None:
        self._brownouts = value
        if self.world is not None:
            self.world.clock.wake()  # the new schedule may cut earlier

    def _cut_from(self) -> int:
        """The clock's ``quiet_until``: :meth:`_clock_moved` acts from the next brown-out."""
        return self.brownouts.next_us

    def _clock_moved(self, now_us: int) -> None:
        # on the world server's thread, under its lock: the power goes at once, the
        # relay thread kills the VM and boots a new one (kind "power-on")
        if now_us >= self.brownouts.next_us and self._server is not None and self.brownouts.due(now_us):
            self._server.cut()
            self._port.power_cycle(wait=False)

    def _port_changed(self, port: str) -> None:
        self.ports.append(port)
        self._announce()
        if self._on_port_change is not None:
            self._on_port_change(port)

    def _watchdog_fired(self) -> None:
        # under the world server's lock (its thread, or the relay's idle clock): the
        # chip resets at once, the relay thread boots a new VM (kind "watchdog")
        if self._server is not None and not self._stopped:  # (a board being stopped stays so)
            self._server.cut()
            self._port.watchdog_reset(wait=False)

    def _port_idle(self, state: str, dt_s: float) -> None:
        """While the VM waits at a REPL prompt its code does not run, so nothing moves the
        virtual clock; a running watchdog must still count down, as on a board (a program
        left at the prompt after a soft reset is reset a timeout later)."""
        if state not in ("friendly", "raw") or self._server is None or not self.world.watchdog.running:
            self._idle_carry = 0.0
            return
        self._idle_carry += dt_s * 1e6
        whole = int(self._idle_carry)
        if whole:
            self._idle_carry -= whole
            with self._server.lock:
                self.world.clock.advance_us(whole)

    def power_cycle(self, timeout: float = 10.0) -> None:
        """A brown-out now: the VM is killed, the parts power-cycle, boot.py then main.py."""
        self._port.power_cycle(timeout)

    def _on_reset(self, kind: str) -> None:
        """Before each VM boot: the parts see the reset as real ones would."""
        if self._user_on_reset is not None:
            self._user_on_reset(kind)
        if self.world is None or self._server is None:
            return
        # the old VM's last requests are handled first (its connection ends with it)
        self._server.wait_idle(2.0)
        with self._server.lock:
            self.world.on_reset(kind)
            # what the new VM's machine.reset_cause() answers (the chip's reset reason)
            self.vm.env["LB_RESET_CAUSE"] = str(self.world.watchdog.cause)

    def __enter__(self) -> VMBoard:
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

    @property
    def lock(self):
        """Hold it while reading :attr:`world` from another thread (the VM's requests
        are handled under it)."""
        if self._server is None:
            raise RuntimeError("the board has no world (no board description) or is not started")
        return self._server.lock

    def _firmware_waits(self) -> bool:
        # a program that never waited on select.poll (not the firmware) is not held for
        s = self._server
        return s is None or not s.waits or s.waiting.is_set()

    def wait_firmware_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the firmware has booted and waits for the host (a session that
        starts then is the same run every time; one whose first frames reach a booting
        firmware depends on how long the boot took). False on a timeout."""
        return self._server is not None and self._server.waiting.wait(timeout)

    def true_state(self, net: int = 0) -> TrueState:
        """The physics of network ``net`` now: node volts, edge currents, watts. Read
        once the firmware waits for the host (e.g. after the reply the host just had; at
        most :data:`HOST_SILENT_S` later while it trains), so a seeded session reads the
        same numbers every time."""
        if self._server is not None and self._server.waits:  # a firmware that waits for the host
            self._server.waiting.wait(HOST_SILENT_S)
        with self.lock:
            return self.world.true_state(net)

    def counters(self) -> PortCounters:
        """Snapshot: VM starts, soft/hard resets, crashes, interrupts, and per direction
        (``to_board``, ``to_host``) the bytes in/out, dropped, corrupted, duplicated."""
        return self._port.counters()
