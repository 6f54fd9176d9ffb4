"""The fast in-process emulated board: the unchanged firmware under CPython.

The firmware's ``App`` runs in a thread on the emulator's ``machine`` layer
(:mod:`learnboard.emulator.machine_layer`) and virtual clock, and talks over an in-memory
byte pair — no VM, no pty. The host's end of the pair is :attr:`InProcessBoard.byte_port`
(``read``/``write``/``close``); the command line puts the host's link on it
(:class:`learnboard.cli.connection.LinkedInProcessBoard`). Use it for simulations and tests
that need a board but not the MicroPython VM::

    from learnboard.emulator.inprocess_board import InProcessBoard

    with InProcessBoard("gen2-clln", seed=1) as b:
        b.byte_port.write(frame)          # a protocol frame, as the host sends it
        print(b.true_state().power)       # watts, from the physics

Time: while the firmware works (settling, pulses, conversions) only the virtual clock
advances, by the parts' own times and the cost model's. While it idles waiting for the
host, a host that answers within :data:`HOST_SILENT_S` of real time is taken to answer
after :data:`HOST_TURNAROUND_US` of board time, whatever it really took: so a seeded
session is the same run every time, however busy the machine. A host silent for longer
is silent on the board too: the board's clock then catches up with real time pass by
pass (the watchdog, the keeping of leaking gates and the park on host silence see all
of it), as a real board's would. Resets (``machine.reset()``, the watchdog, :meth:`InProcessBoard.reset`)
restart the firmware from ``board.json``'s contents with its volatile state lost, while
the world's parts behave as real ones do (see :meth:`World.on_reset`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from learnboard.emulator.cost_model import HOST_SILENT_S, HOST_TURNAROUND_US, CostModel
from learnboard.emulator.cost_model import cost_model as get_cost_model
from learnboard.emulator.machine_layer import MachineReset, build
from learnboard.emulator.serial_faults import SerialFaults
from learnboard.emulator.world import Faults, TrueState, World
from learnboard.firmware.lbfw import app as app_mod
from learnboard.firmware.lbfw import consts as fw_consts

from learnboard.boards import Board, CompiledBoard, compile_board, load_board
from learnboard.byte_pipe import MemoryTransport, memory_pair
from learnboard.errors import LearnboardError

DEFAULT_BOARD = "gen2-clln"
IDLE_WAIT_S = 0.002
WATCHDOG_MS = 5000  # firmware/main.py's default


class _FirmwareClock:
    """The firmware's clock object (``hal.Clock`` interface): the emulated ``time``
    module's functions (on the virtual clock, with the cost model's call costs)."""

    def __init__(self, utime) -> None:
        self.ticks_us = utime.ticks_us
        self.ticks_ms = utime.ticks_ms
        self.ticks_diff = utime.ticks_diff
        self.sleep_us = utime.sleep_us


class _FaultyEnd:
    """The host end of the pair with a faulty line towards the board."""

    def __init__(self, end: MemoryTransport, line: SerialFaults) -> None:
        self.end = end
        self.line = line

    def read(self, size: int = 4096) -> bytes:
        return self.end.read(size)

    def write(self, data: bytes) -> None:
        self.end.write(self.line.apply(data))

    def close(self) -> None:
        self.end.close()


class _BoardPort:
    """The firmware's byte port (``read``/``write``/``wait``) over the board end of a pair.

    Each read also delivers what the lines inserted while idle (``SerialFaults.noise``):
    ``noise_in`` towards the board, ``line`` towards the host."""

    def __init__(self, end: MemoryTransport, line: SerialFaults | None = None,
                 noise_in: SerialFaults | None = None, clock=None) -> None:
        self.end = end
        self.line = line
        self.noise_in = noise_in if noise_in is not None and noise_in.insert_rate else None
        self.eof = False
        self.clock = clock
        self.wrote = False  # bytes out since the firmware loop's last look
        self.turn_us: int | None = None  # board time the host's next answer is counted from

    def read(self):
        data = self.end.read(4096)
        if data and self.turn_us is not None and self.clock is not None:
            # the host's answer: HOST_TURNAROUND_US after what it answers, however long the
            # host really took (and whether or not the firmware idled meanwhile)
            late = self.turn_us + HOST_TURNAROUND_US - self.clock.now_us
            self.turn_us = None
            if late > 0:
                self.clock.advance_us(late)
        if self.line is not None and self.line.insert_rate:
            extra = self.line.noise()
            if extra:
                try:
                    self.end.write(extra)
                except OSError:
                    pass
        if self.noise_in is not None:
            extra = self.noise_in.noise()
            if extra:
                data = extra + data
        return data or None

    def write(self, data) -> None:
        data = bytes(data)
        self.wrote = True
        if self.line is not None:
            data = self.line.apply(data)
        try:
            self.end.write(data)
        except OSError:  # the host end closed: a board keeps running with nobody listening
            pass

    def wait(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` for the host's bytes; True when there are some (or the
        host closed its end), False on a timeout or a :meth:`wake`."""
        pipe = self.end._rx
        with pipe.cond:
            if not pipe.data and not pipe.closed:
                pipe.cond.wait(timeout_ms / 1000)
            return bool(pipe.data) or pipe.closed

    def wake(self) -> None:
        """End a :meth:`wait` early (a reset or a stop asked from another thread)."""
        pipe = self.end._rx
        with pipe.cond:
            pipe.cond.notify_all()


class InProcessBoard:
    """An emulated learning board whose firmware runs in this process.

    Args:
        board: a profile name, a board .toml, or a loaded :class:`Board`.
        seed: seed of the world's device spreads and noise.
        faults: fault knobs of the world (stuck edges, dead ADC inputs, noise, leakage).
        world_factory: builds the :class:`World` (e.g. a calibrated twin); default
            ``World(board, seed=seed, faults=faults)``.
        after_tick: called with the world after every pass of the firmware's main loop,
            under the board lock (safety monitors, memory probes, faults at a given
            step); also settable later as :attr:`after_tick`.
        serial_faults: ``(to_board, to_host)`` faulty lines between host and firmware
            (bytes dropped, corrupted, duplicated), as on a noisy USB cable.
        cost_model: what the firmware's own Python costs on the virtual clock
            (``"rp2040"``, the default, or ``"zero"``; :mod:`learnboard.emulator.cost_model`).
    """

    def __init__(
        self,
        board: str | Path | Board = DEFAULT_BOARD,
        *,
        seed: int = 0,
        faults: Faults | None = None,
        world_factory: Callable[[Board], World] | None = None,
        after_tick: Callable[[World], None] | None = None,
        serial_faults: tuple[SerialFaults, SerialFaults] | None = None,
        cost_model: str | CostModel | None = None,
    ) -> None:
        self.cost_model = get_cost_model(cost_model)
        self.board = board if isinstance(board, Board) else load_board(board)
        self.compiled: CompiledBoard = compile_board(self.board)
        # what the firmware reads from board.json: JSON types, not the compiler's objects
        self._body_json = json.dumps(self.compiled.body)
        self.world = world_factory(self.board) if world_factory else World(self.board, seed=seed, faults=faults)
        self.lock = threading.RLock()  # the world and the firmware are not thread-safe
        self.boots = 0
        self.resets: list[str] = []
        self._reset_request: str | None = None
        self._host_silent = False  # the host has not sent for HOST_SILENT_S (see _idle)
        self._owed_us = 0.0
        self._waiting = threading.Event()  # the firmware waits for the host (see true_state)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.app: app_mod.App | None = None
        host_end, board_end = memory_pair(timeout_a=0.05, timeout_b=0.0)
        self.serial_faults = serial_faults
        to_board, to_host = serial_faults or (None, None)
        for line in (to_board, to_host):
            if line is not None and line.clock is None:  # inserted bytes on the virtual clock
                clock = self.world.clock
                line.clock = lambda clock=clock: clock.now_s
        self._host_end = _FaultyEnd(host_end, to_board) if to_board is not None else host_end
        self._port = _BoardPort(board_end, to_host, noise_in=to_board, clock=self.world.clock)
        self.after_tick = after_tick

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> InProcessBoard:
        """Boot the firmware in its thread."""
        if self._thread is None:
            self._boot()
            with self.lock:  # the boot's own work is done before the host can send
                try:
                    self._pass()
                except MachineReset as reset:
                    self._restart(reset.kind)
            self._thread = threading.Thread(target=self._loop, daemon=True, name="lb-inprocess-board")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the firmware thread and close the byte pair."""
        self._stop.set()
        self._port.wake()
        self._host_end.close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> InProcessBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a user or test sees ---------------------------------------------------------

    @property
    def byte_port(self) -> MemoryTransport | _FaultyEnd:
        """The host's end of the byte pair: ``read(size)`` (waits up to 50 ms),
        ``write(data)``, ``close()``."""
        return self._host_end

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """What stopped the firmware thread, if it stopped on its own."""
        return self._error

    def true_state(self, net: int = 0) -> TrueState:
        """The physics of network ``net`` now: node volts, edge currents, watts. Asked
        while the firmware is not training, it is read once the firmware waits for the
        host again (after the reply the host just had), so a seeded session reads the same
        numbers every time."""
        app = self.app
        if app is not None and not app.training and self.running:
            self._waiting.wait(HOST_SILENT_S)
        with self.lock:
            return self.world.true_state(net)

    def reset(self, kind: str = "hard", timeout: float = 5.0) -> None:
        """Reset the board: ``"hard"`` (reset button) or ``"power-on"`` (a brown-out: the
        parts power-cycle too). Returns when the firmware has booted again."""
        boots = self.boots
        self.request_reset(kind)
        deadline = time.monotonic() + timeout
        while self.boots == boots:
            if not self.running or time.monotonic() > deadline:
                raise LearnboardError(f"the emulated board did not boot again after a {kind} reset")
            time.sleep(0.001)

    def request_reset(self, kind: str = "hard") -> None:
        """Reset the board at the firmware loop's next pass and return at once (from an
        :attr:`after_tick` hook too: a reset at an exact point of a run)."""
        if kind not in ("hard", "power-on"):
            raise LearnboardError(f"unknown reset kind {kind!r}; use 'hard' or 'power-on'")
        self._reset_request = kind
        self._port.wake()

    # -- the firmware thread --------------------------------------------------------------

    def _boot(self) -> None:
        machine, utime = build(self.world, cost=self.cost_model)
        body = json.loads(self._body_json)
        # as firmware/main.py does on a board: a watchdog resets a hung loop
        watchdog = bool(self.resets) and self.resets[-1] == "watchdog"
        self.app = app_mod.App(body, self.compiled.sha256, machine,
                               _FirmwareClock(utime), self._port,
                               wdt=machine.WDT(timeout=WATCHDOG_MS), wdt_ms=WATCHDOG_MS,
                               boot_flt=fw_consts.F_WATCHDOG if watchdog else 0,
                               calibration_file=None)  # no flash filesystem in process
        self.boots += 1
        self.app.srv.event(app_mod.msgs.EV_BOOT, {"fw": app_mod.VERSION, "board": self.app.name,
                                                  "proto": app_mod.msgs.PROTOCOL})

    def _restart(self, kind: str) -> None:
        self.resets.append(kind)
        self.world.on_reset(kind)  # a hard reset stops the watchdog, a soft one does not
        self._boot()

    def _loop(self) -> None:
        clock = self.world.clock
        try:
            while not self._stop.is_set():
                kind, self._reset_request = self._reset_request, None
                with self.lock:
                    if kind:
                        self._restart(kind)
                    try:
                        busy = self._pass()
                    except MachineReset as reset:
                        self._restart(reset.kind)
                        continue
                if not busy:
                    advance = self._idle()
                    with self.lock:
                        try:
                            clock.advance_us(advance)
                        except MachineReset as reset:  # the watchdog fired while idle
                            self._restart(reset.kind)
        except BaseException as exc:  # keep it for the caller; the board is "dead"
            self._error = exc

    def _pass(self) -> bool:
        """One pass of the firmware's main loop; True when it did something (a request,
        a training step)."""
        clock = self.world.clock
        clock.advance_us(self.cost_model.pass_us)  # the loop's own pass
        app = self.app
        busy = app.tick() or app.training
        if self.after_tick is not None:  # may stall the clock: a watchdog
            self.after_tick(self.world)
        port = self._port
        if (busy or port.wrote) and not app.training:
            # the host answers what this pass did (a reply, an event) HOST_TURNAROUND_US
            # after it: the idle passes until then take that time together, however many
            port.turn_us = clock.now_us
        elif app.training:
            port.turn_us = None  # a training board does not wait for the host's frames
        port.wrote = False
        return busy

    def _wait(self, seconds: float) -> bool:
        """The port's wait, during which :meth:`true_state` may read the world."""
        self._waiting.set()
        try:
            return self._port.wait(seconds * 1000)
        finally:
            self._waiting.clear()

    def _idle(self) -> float:
        """Wait for the host after an idle pass; the board µs that passed meanwhile (see
        the module docstring). A silence longer than :data:`HOST_SILENT_S` is owed to the
        clock and paid :data:`IDLE_WAIT_S` per pass, so every pass sees its share."""
        slice_us = IDLE_WAIT_S * 1e6
        if self._owed_us > 0:  # catching up with a silent host's time, pass by pass
            pay = min(self._owed_us, slice_us)
            self._owed_us -= pay
            return pay
        if self._host_silent:  # still silent: real time, in the firmware's own waits
            t0 = time.monotonic()
            arrived = self._wait(IDLE_WAIT_S)
            self._host_silent = not arrived
            return (time.monotonic() - t0) * 1e6
        t0 = time.monotonic()
        if self._wait(HOST_SILENT_S) or self._reset_request or self._stop.is_set():
            return 0.0  # the port's read puts the host's turnaround on the clock
        self._host_silent = True
        self._owed_us = (time.monotonic() - t0) * 1e6
        return 0.0
