"""The user-facing serial port of a virtual board: a raw pseudo-terminal.

:class:`VirtualPort` opens a pty pair in raw mode (the slave path, e.g. ``/dev/pts/5``,
is what a host opens like ``/dev/ttyACM0``) and relays bytes, unchanged, between it and
the VM's own pty (:class:`~learnboard.emulator.vm.VMProcess`) on one thread. On the way
it does what a board's USB serial stack and reset logic do:

* a 0x03 byte interrupts running code (SIGINT to the VM) only when the VM has Ctrl-C
  enabled; after ``micropython.kbd_intr(-1)`` it is passed on as data;
* the VM process ends on a soft reset: the port prints ``MPY: soft reboot``, boots a new
  VM and, if the reset came from the raw REPL, runs boot.py only and returns to the raw
  REPL (printing its banner, as mpremote expects); from the friendly REPL it runs
  boot.py then main.py;
* a hard reset (:meth:`VirtualPort.hard_reset`, or ``machine.reset()`` in the VM), a
  watchdog reset (:meth:`VirtualPort.watchdog_reset`), a power cycle and a VM crash kill
  the VM and boot a new one with boot.py then main.py;
* with ``replug=True`` those resets also drop the USB serial port, as a board's USB
  device disappears when its chip resets: the pty is closed (a host holding it open
  reads an error) and a new one is opened, under the same path if nobody holds the old
  one, else under a new one — as a Pico comes back as ``ttyACM0`` or ``ttyACM1``.
  ``on_port_change`` is told the new path. A soft reset keeps the port, as on a board;
* optional serial faults (:class:`~learnboard.emulator.serial_faults.SerialFaults`) on
  each direction, inserted random bytes included (on the relay's clock, ``time.monotonic``;
  those towards the board pass its USB stack like the host's: a 0x03 interrupts code that
  has Ctrl-C enabled).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import pty
import queue
import select
import signal
import struct
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

from learnboard.emulator.repl_state import FRIENDLY, RAW, RAW_PASTE, ReplTracker
from learnboard.emulator.serial_faults import FaultCounters, SerialFaults
from learnboard.emulator.vm import HARD_RESET_EXIT, READY_MARK, RESET_MARK, VMProcess

SOFT_REBOOT_BANNER = b"MPY: soft reboot\r\n"

_CHUNK = 4096
_HIGH_WATER = 64 * 1024  # stop reading a side while this much waits for the other
_LAST_WORDS_S = 1.0  # longest a replug waits for a talking host to read what the VM sent
_DELIVERED_S = 0.05  # the host's side of the pty stayed empty this long: all of it was read
HOLD_S = 0.05
"""Longest a host's bytes wait for the firmware to go idle (then a busy firmware, e.g. in
a training chunk, gets them as it would on a board)."""
_FAST_EXIT_S = 0.25  # a VM that dies sooner than this is restarted after a pause
_SIGINT_GRACE_S = 0.5  # a second SIGINT while one is pending would make the VM exit(1)
_REENUMERATE_S = 1.0  # longest wait for the host to let go of a dropped port

RESET_KINDS = ("power-on", "soft", "hard", "crash", "watchdog")
_HARD_KINDS = ("hard", "power-on", "watchdog")  # resets requested from outside the relay


@dataclass
class PortCounters:
    """Events and traffic of a virtual port since it started."""

    vm_starts: int = 0
    soft_resets: int = 0
    hard_resets: int = 0
    crashes: int = 0
    """VM exits by a signal the port did not send (a crash of the VM)."""
    interrupts: int = 0
    """Keyboard interrupts delivered to running code."""
    power_cycles: int = 0
    """Power losses (brown-outs): the VM killed, the parts power-cycled, a fresh boot."""
    watchdog_resets: int = 0
    """Resets by the emulated watchdog (it ran out)."""
    replugs: int = 0
    """Times the serial port was dropped and opened again (hard resets with ``replug``)."""
    to_board: FaultCounters = field(default_factory=FaultCounters)
    to_host: FaultCounters = field(default_factory=FaultCounters)


def _mark_prefix_len(buf: bytes) -> int:
    """Length of the longest tail of ``buf`` that starts :data:`READY_MARK` or
    :data:`RESET_MARK`."""
    for n in range(min(len(buf), len(READY_MARK) - 1), 0, -1):
        if READY_MARK.startswith(buf[-n:]) or RESET_MARK.startswith(buf[-n:]):
            return n
    return 0


class VirtualPort:
    """A raw pty that behaves like a MicroPython board's USB serial port.

    Args:
        vm: the VM to run behind the port (started and restarted by the port).
        to_board: faults on bytes from the host to the board (None: a perfect line).
        to_host: faults on bytes from the board to the host.
        on_reset: called on the relay thread with the reset kind (``"power-on"``,
            ``"soft"``, ``"hard"``, ``"crash"``, ``"watchdog"``) just before each VM
            boots, e.g. for device models to drop volatile state.
        replug: drop and reopen the pty on every reset but a soft one (USB re-enumerates).
        on_port_change: called on the relay thread with the new path after a replug.
        on_idle: called on the relay thread about every 0.1 s with the REPL state and
            the real seconds since the previous call (e.g. to move a virtual clock on
            while the VM waits at a prompt).
        firmware_waits: while a program runs (not at a REPL prompt), the host's bytes go
            to the VM only when this says the program waits for input, or after
            :data:`HOLD_S`: a host that answers before the firmware has gone idle then
            reaches it at the same point of its loop as a slower one (the board's clock
            does not depend on the host's speed; a busy firmware still gets them).
    """

    def __init__(
        self,
        vm: VMProcess,
        *,
        to_board: SerialFaults | None = None,
        to_host: SerialFaults | None = None,
        on_reset: Callable[[str], None] | None = None,
        replug: bool = False,
        on_port_change: Callable[[str], None] | None = None,
        on_idle: Callable[[str, float], None] | None = None,
        firmware_waits: Callable[[], bool] | None = None,
    ) -> None:
        self.vm = vm
        self.firmware_waits = firmware_waits
        self._held_since: float | None = None
        self._host_seen: float | None = None  # when the host last sent anything
        self.replug = replug
        self.on_port_change = on_port_change
        self.on_idle = on_idle
        self._idle_at = time.monotonic()
        self.to_board = to_board or SerialFaults()
        self.to_host = to_host or SerialFaults()
        self.on_reset = on_reset
        self.tracker = ReplTracker()
        self.error: BaseException | None = None
        """An exception that stopped the relay thread, if any."""
        self._counters = PortCounters()
        self._lock = threading.Lock()
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self.port: str | None = None
        """Path of the pty a host opens (set by :meth:`start`)."""
        self._reset_relay_state()

    # -- public API -----------------------------------------------------------------

    def start(self) -> str:
        """Open the pty, boot the VM (boot.py, main.py) and start relaying; return the path."""
        if self._thread is not None:
            raise RuntimeError("the port is already started")
        self._open_pty()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping.clear()
        self._boot("power-on", run_main=True, mode=FRIENDLY)
        self._thread = threading.Thread(target=self._run, name=f"vport {self.port}", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self.port

    def stop(self) -> None:
        """Stop relaying, kill the VM and close the pty. Safe to call twice."""
        atexit.unregister(self.stop)
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.vm.close()
        for name in ("_master", "_slave", "_wake_r", "_wake_w"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def hard_reset(self, timeout: float = 10.0) -> None:
        """Reset the board like its reset button: kill the VM, boot, boot.py, main.py.

        Returns once the new VM has started (not when main.py has finished).
        """
        self._request("hard", timeout)

    def watchdog_reset(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """The watchdog ran out: like :meth:`hard_reset`, with the kind ``"watchdog"``.
        With ``wait=False`` it only asks the relay thread (safe from any thread)."""
        self._request("watchdog", timeout, wait=wait)

    def power_cycle(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Cut the power and restore it (a brown-out): like :meth:`hard_reset`, but the
        reset kind passed to ``on_reset`` is ``"power-on"``. With ``wait=False`` it only
        asks the relay thread (safe from any thread, e.g. one serving the VM)."""
        self._request("power-on", timeout, wait=wait)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> str:
        """REPL state seen on the line: booting, friendly, raw, raw-paste or running."""
        return self.tracker.state

    def counters(self) -> PortCounters:
        """A snapshot of the reset and serial-fault counters."""
        with self._lock:
            c = PortCounters(**{k: v for k, v in vars(self._counters).items()})
        c.to_board = self.to_board.snapshot()
        c.to_host = self.to_host.snapshot()
        return c

    # -- relay thread ---------------------------------------------------------------

    def _reset_relay_state(self) -> None:
        self._to_host = bytearray()
        self._to_board = bytearray()
        self._booting = False  # output is scanned for READY_MARK
        self._boot_buf = b""
        self._boot_mode = FRIENDLY
        self._await_prompt = False  # raw reboot: the friendly banner is being swallowed
        self._prompt_buf = b""
        self._vm_alive = False
        self._reset_asked = False
        self._quiet = False
        self._vm_started_at = 0.0
        self._sigint_at: float | None = None

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                os.write(self._wake_w, b"!")
            except (BlockingIOError, OSError):
                pass

    def _request(self, what: str, timeout: float, wait: bool = True) -> None:
        # without waiting, a request may come before the relay thread runs (a watchdog
        # that fires during the first boot): it is served once the thread starts
        if not self.running and (wait or self._master is None or self._stopping.is_set()):
            raise RuntimeError("the port is not running")
        done = threading.Event()
        self._requests.put((what, done))
        self._wake()
        if wait and not done.wait(timeout):
            raise TimeoutError(f"the virtual port did not complete a {what} reset in {timeout} s")

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + 1)

    def _boot(self, kind: str, *, run_main: bool, mode: str, quiet: bool = False) -> None:
        """Start a fresh VM for a reset of ``kind``; it comes back in REPL ``mode``.
        ``quiet``: no reset at all (the parts are not told, no boot.py, no banner), only
        the VM's prompt again."""
        if self.on_reset is not None and not quiet:
            self.on_reset(kind)
        self.vm.close()
        if not quiet:
            self._to_board.clear()
        self._reset_asked = False
        self.vm.start(run_main=run_main, run_boot=not quiet)
        self._vm_alive = True
        self._vm_started_at = time.monotonic()
        self._booting = True
        self._boot_buf = b""
        self._boot_mode = mode
        self._await_prompt = False
        self._quiet = quiet
        self._sigint_at = None
        self.tracker.reboot(mode)
        self._count("vm_starts")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - reported, and the VM is not left behind
            self.error = exc
            print(f"learnboard emulator: serial relay stopped: {exc!r}", file=sys.stderr)
            self.vm.close()

    def _open_pty(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)  # a host that opens the port without configuring it gets raw bytes
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)

    def _replug(self) -> None:
        """USB drops with the chip's reset: close the pty (the old path vanishes unless a
        host holds it open), open a new one, tell ``on_port_change``."""
        if not self.replug:
            return
        old = self.port
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._to_host.clear()
        self._to_board.clear()
        # USB takes a moment to enumerate the board again; a host that closes the port
        # meanwhile gets the same name back (usually: the kernel picks the lowest free
        # number, as udev does for ttyACM), one that holds it gets a new one
        deadline = time.monotonic() + _REENUMERATE_S
        while old is not None and os.path.exists(old) and time.monotonic() < deadline \
                and not self._stopping.is_set():
            time.sleep(0.005)
        self._open_pty()
        self._count("replugs")
        if self.on_port_change is not None:
            self.on_port_change(self.port)

    def _idle_tick(self) -> None:
        now = time.monotonic()
        dt, self._idle_at = now - self._idle_at, now
        if self.on_idle is not None and self._vm_alive and not self._booting:
            self.on_idle(self.tracker.state, dt)

    def _loop(self) -> None:
        wake = self._wake_r
        while not self._stopping.is_set():
            master = self._master
            self._idle_tick()
            vm_fd = self.vm.fd if self._vm_alive else None
            rlist = [wake]
            if len(self._to_board) < _HIGH_WATER:
                rlist.append(master)
            if vm_fd is not None and len(self._to_host) < _HIGH_WATER:
                rlist.append(vm_fd)
            wlist = []
            if self._to_host:
                wlist.append(master)
            held = False
            if self._to_board and vm_fd is not None and not self._holding_input():
                if self._deliver_now():
                    wlist.append(vm_fd)
                else:
                    held = True
            self._line_noise()
            # inserted bytes arrive while the line idles too: look often enough that they
            # land spread out rather than in 0.1 s bursts
            wait = 0.01 if self.to_board.insert_rate or self.to_host.insert_rate else 0.1
            if held:  # look again soon: the firmware may go idle any moment
                wait = 0.0005
            readable, writable, _ = select.select(rlist, wlist, [], wait)
            if wake in readable:
                try:
                    os.read(wake, 512)
                except BlockingIOError:
                    pass
                self._serve_requests()
                continue
            if master in readable:
                self._read_host()
            if vm_fd is not None and vm_fd in readable and not self._read_vm():
                self._vm_closed_pty()
            if master in writable and self._to_host:
                self._write(master, self._to_host)
            if vm_fd is not None and self._vm_alive and vm_fd in writable and self._to_board:
                self._write(vm_fd, self._to_board)
            if self._reset_asked:
                self._asked_reset()
            elif self._vm_alive and self.vm.poll() is not None:
                self._vm_exited()

    def _line_noise(self) -> None:
        """Bytes the line inserts while nothing passes (``SerialFaults.noise``)."""
        if self.to_board.insert_rate:
            self._host_bytes(self.to_board.noise())
        if self.to_host.insert_rate:
            self._to_host += self.to_host.noise()

    def _deliver_now(self) -> bool:
        """Whether the host's bytes may go to the VM now (see ``firmware_waits``)."""
        if self.firmware_waits is None or self.tracker.state in (FRIENDLY, RAW, RAW_PASTE):
            self._held_since = None
            return True
        if self.firmware_waits():
            self._held_since = None
            return True
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        if now - self._held_since >= HOLD_S:
            self._held_since = None
            return True
        return False

    def _holding_input(self) -> bool:
        # While a raw-REPL reboot is under way the host's bytes wait, so they reach the
        # raw REPL after our Ctrl-A rather than boot.py or the friendly prompt.
        return self._boot_mode == RAW and (self._booting or self._await_prompt)

    def _serve_requests(self) -> None:
        while True:
            try:
                what, done = self._requests.get_nowait()
            except queue.Empty:
                return
            if what in _HARD_KINDS:
                self.vm.kill()
                self._drain_vm(emit=False)  # power is gone: what was in flight is lost
                self._to_host.clear()
                self._count({"hard": "hard_resets", "power-on": "power_cycles",
                             "watchdog": "watchdog_resets"}[what])
                self._replug()
                self._boot(what, run_main=True, mode=FRIENDLY)
            done.set()

    def _flush_to_host(self) -> None:
        """Before a replug: what the VM printed last (e.g. the reply to the command that
        reset it) goes out if the host reads it in time, as USB sends its last packets."""
        if not self.replug:
            return
        # on USB the host holds what the board sent before it reset (its driver read the
        # packets): give a slow or loaded host time to read it from the pty before it closes
        now = time.monotonic()
        talking = self._host_seen is not None and now - self._host_seen < 5.0
        deadline = now + (_LAST_WORDS_S if talking else 0.2)  # nobody reading: no wait
        while self._to_host and time.monotonic() < deadline:
            self._write(self._master, self._to_host)
            if self._to_host:
                select.select([], [self._master], [], 0.02)
        # written into the pty is not yet read: closing it now would discard what the host
        # has not read, so wait (as long as above) until the host's side holds nothing.
        # Bytes written to the master reach the slave's queue through the kernel's flip
        # buffer a moment later (later still on a loaded machine), so one empty look is not
        # enough: it must stay empty for _DELIVERED_S.
        empty_since = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self._unread_by_host():
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= _DELIVERED_S:
                break
            time.sleep(0.002)

    def _unread_by_host(self) -> int:
        """Bytes waiting in the host's side of the pty (0 if that cannot be told)."""
        try:
            return struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    def _write(self, fd: int, buf: bytearray) -> None:
        try:
            n = os.write(fd, buf)
        except BlockingIOError:
            return
        except OSError:
            if fd == self._master:
                raise
            return  # the VM's side went away; its exit is handled by the loop
        del buf[:n]

    def _read_host(self) -> None:
        try:
            data = os.read(self._master, _CHUNK)
        except BlockingIOError:
            return
        if data:
            self._host_seen = time.monotonic()  # a host holds the port and talks
        self._host_bytes(self.to_board.apply(data))

    def _host_bytes(self, data: bytes) -> None:
        """What reaches the board's USB stack from the line."""
        if not data:
            return
        if b"\x03" in data and self._vm_alive and self.vm.sigint_enabled():
            # The board's USB stack takes Ctrl-C out of the stream and interrupts the code.
            data = data.replace(b"\x03", b"")
            now = time.monotonic()
            if self._sigint_at is None or now - self._sigint_at > _SIGINT_GRACE_S:
                self._sigint_at = now
                self.vm.interrupt()
                self._count("interrupts")
        self.tracker.feed_input(data)
        self._to_board += data

    def _read_vm(self) -> bool:
        """Read what the VM printed; False when its pty is closed (the VM ended)."""
        try:
            data = os.read(self.vm.fd, _CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self._from_vm(data)
        return True

    def _vm_closed_pty(self) -> None:
        """The VM's pty reports hang-up: the VM is ending (or broken; then end it)."""
        try:
            self.vm.wait(timeout=1.0)
        except Exception:  # noqa: BLE001 - a VM without its console is of no use
            self.vm.kill()

    def _drain_vm(self, emit: bool = True) -> None:
        """Read the last output of a finished VM."""
        if self.vm.fd is None:
            return
        while True:
            try:
                data = os.read(self.vm.fd, _CHUNK)
            except OSError:
                return
            if not data:
                return
            if emit:
                self._from_vm(data)

    def _from_vm(self, data: bytes) -> None:
        if self._booting:
            buf = self._boot_buf + data
            at = buf.find(RESET_MARK)
            if at >= 0:  # machine.reset() in boot.py or main.py
                self._emit(buf[:at])
                self._boot_buf = b""
                self._reset_asked = True
                return
            at = buf.find(READY_MARK)
            if at < 0:
                keep = _mark_prefix_len(buf)
                self._boot_buf = buf[len(buf) - keep :]
                self._emit(buf[: len(buf) - keep])
                return
            self._emit(buf[:at])
            self._booting = False
            self._boot_buf = b""
            data = buf[at + len(READY_MARK) :]
            if self._boot_mode == RAW or self._quiet:
                self._await_prompt = True
                self._prompt_buf = b""
        if self._await_prompt:
            # Swallow the VM's friendly banner, then enter the raw REPL, whose banner the
            # host sees, as after a soft reset of a real board in the raw REPL.
            buf = self._prompt_buf + data
            at = buf.find(b">>> ")
            if at < 0:
                self._prompt_buf = buf[-3:]
                return
            self._await_prompt = False
            data = buf[at + 4 :]
            if self._boot_mode == RAW:
                self._to_board[:0] = b"\x01"
            else:  # quiet: what a Ctrl-C at the friendly prompt prints
                data = b"\r\n>>> " + data
        if self._sigint_at is not None and b"KeyboardInterrupt" in data:
            self._sigint_at = None
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if data:
            self.tracker.feed_output(data)
            self._to_host += self.to_host.apply(data)

    def _asked_reset(self) -> None:
        """``machine.reset()`` while main.py ran: the hard reset the VM cannot do itself."""
        self._reset_asked = False
        self.vm.kill()
        self._drain_vm(emit=False)
        self._vm_alive = False
        self._count("hard_resets")
        self._flush_to_host()
        self._replug()
        self._boot("hard", run_main=True, mode=FRIENDLY)

    def _vm_exited(self) -> None:
        died_booting = self._booting  # before the drain, which may still find the marker
        self._drain_vm()
        died_booting = died_booting and self._booting
        if self._boot_buf:
            self._emit(self._boot_buf)
            self._boot_buf = b""
        rc = self.vm.wait()
        self._vm_alive = False
        if died_booting and time.monotonic() - self._vm_started_at < _FAST_EXIT_S:
            # A boot loop (e.g. main.py calling sys.exit) must not spin the CPU.
            self._stopping.wait(_FAST_EXIT_S)
            if self._stopping.is_set():
                return
        if rc == HARD_RESET_EXIT:
            self._count("hard_resets")
            self._flush_to_host()
            self._replug()
            self._boot("hard", run_main=True, mode=FRIENDLY)
        elif rc == -signal.SIGINT and self._sigint_at is not None:
            # The code ended between the check that it had a SIGINT handler and the
            # signal, and the default action ended the VM. On a board that Ctrl-C reaches
            # the prompt: nothing resets, so the VM only comes back at its prompt.
            self._boot("interrupt", run_main=False, mode=self.tracker.mode, quiet=True)
        elif rc < 0:
            self._count("crashes")
            self._flush_to_host()
            self._replug()
            self._boot("crash", run_main=True, mode=FRIENDLY)
        else:
            # Ctrl-D at a prompt, sys.exit() or machine.soft_reset(): a soft reset.
            mode = self.tracker.mode
            self._count("soft_resets")
            self._emit(SOFT_REBOOT_BANNER)
            self._boot("soft", run_main=mode == FRIENDLY, mode=mode)
