"""Kernel-enforced limits for the emulator's VM process on Linux (Landlock).

The VM's own modules already keep board code inside the flash folder (``vmlib/_lbfs.py``),
but code inside the VM can always reach the unix port's built-in ``os`` again (for
example by deleting ``sys.modules['uos']``). On a Linux kernel with Landlock (5.13 and
later, when enabled) the VM process is therefore also started with a Landlock domain in
which it may create, change and remove files only beneath the flash folder, and execute no
program but its own binary (and that binary's interpreter): ``os.system`` then runs
nothing, and a ``VfsPosix('/')`` writes nothing. Reading is not limited. Elsewhere (other
systems, older kernels) :func:`spawn` starts the process unchanged and
:func:`available` says so.

The domain is entered by a short-lived thread that then starts the process, so the
caller's own threads stay unrestricted (Landlock applies to the calling thread and what it
starts) and no Python runs between fork and exec.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on every arch
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_WRITES_IN_DIRS = sum(1 << b for b in range(4, 13))  # REMOVE_DIR, REMOVE_FILE, MAKE_CHAR ... MAKE_SYM
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_O_PATH = getattr(os, "O_PATH", 0)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def available() -> int:
    """The kernel's Landlock ABI version, or 0 when the VM runs without Landlock."""
    libc = _libc()
    if libc is None:
        return 0
    abi = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _interpreter(path: Path) -> Path | None:
    """The program the kernel loads to run ``path``: a script's ``#!`` interpreter or an
    ELF file's dynamic loader (PT_INTERP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if head.startswith(b"#!"):
                words = head[2:].split(b"\n", 1)[0].split()
                return Path(os.fsdecode(words[0])) if words else None
            if head[:4] != b"\x7fELF":
                return None
            bits64, end = head[4] == 2, "<" if head[5] == 1 else ">"
            if bits64:
                phoff, = struct.unpack_from(end + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                phoff, = struct.unpack_from(end + "I", head, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                ph = f.read(phentsize)
                if struct.unpack_from(end + "I", ph, 0)[0] != 3:  # PT_INTERP
                    continue
                if bits64:
                    offset, = struct.unpack_from(end + "Q", ph, 8)
                    size, = struct.unpack_from(end + "Q", ph, 32)
                else:
                    offset, = struct.unpack_from(end + "I", ph, 4)
                    size, = struct.unpack_from(end + "I", ph, 16)
                f.seek(offset)
                return Path(os.fsdecode(f.read(size).rstrip(b"\0")))
    except (OSError, struct.error, IndexError):
        return None
    return None


def programs(executable: str | os.PathLike) -> list[Path]:
    """``executable`` and every interpreter the kernel loads to start it, resolved."""
    out: list[Path] = []
    path: Path | None = Path(executable)
    while path is not None and len(out) < 8:
        real = path.resolve()
        if real in out:
            break
        out.append(real)
        path = _interpreter(real)
    return out


def spawn(start: Callable[[], T], *, write_dirs: Sequence[str | os.PathLike],
          executable: str | os.PathLike) -> T:
    """Run ``start()`` (which starts the VM process) so that the process may write only
    beneath ``write_dirs`` and execute only ``executable`` and its interpreters; plainly
    when the kernel has no Landlock."""
    abi = available()
    if abi <= 0:
        return start()
    libc = _libc()
    assert libc is not None
    handled = _EXECUTE | _WRITE_FILE | _WRITES_IN_DIRS
    handled |= _REFER if abi >= 2 else 0
    handled |= _TRUNCATE if abi >= 3 else 0
    attr = struct.pack("=Q", handled)
    ruleset = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), attr, ctypes.c_size_t(len(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return start()
    try:
        rules = [(d, handled & ~_EXECUTE) for d in write_dirs]
        rules += [(p, _EXECUTE) for p in programs(executable)]
        for path, access in rules:
            fd = os.open(path, _O_PATH | os.O_CLOEXEC)
            try:
                rule = struct.pack("=Qi", access, fd)
                if libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset),
                                ctypes.c_int(_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"Landlock rule for {path}: {os.strerror(err)}")
            finally:
                os.close(fd)
        result: dict[str, object] = {}

        def confined() -> None:
            try:
                if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(
                        ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"entering the Landlock domain: {os.strerror(err)}")
                result["value"] = start()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                result["error"] = exc

        t = threading.Thread(target=confined, name="landlock-spawn", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(ruleset)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]
