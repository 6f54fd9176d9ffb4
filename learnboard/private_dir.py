"""This user's private folder for run-time files (the port registry, port locks, emulated
boards' announcements), and the only ways learnboard writes into it.

The folder is ``$XDG_RUNTIME_DIR/learnboard`` or, without that setting,
``learnboard-<uid>`` in the system's temp folder, which every local user can write to.
So the folder is made with mode 0700, and before every use it must be a real folder (not
a symlink) owned by this user with no group or other permissions: a folder another user
created there first, or one others may write to, is refused with a message saying what
to do (one they may only read is narrowed to 0700). Files inside are created with ``O_EXCL | O_NOFOLLOW`` and put in place by
rename, so a symlink planted under a file's name is replaced, never written through.

Both host and emulator write here (the registry; the announcements), so this module
sits below both.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from learnboard.errors import LearnboardError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has none (and no symlinks a user may plant in %TEMP%)
_POSIX = os.name == "posix"


class UnsafeFolder(LearnboardError):
    """The private folder exists but is not private (another owner, a wide mode, a symlink)."""


def runtime_dir() -> Path:
    """This user's folder for run-time files (not created here): ``$XDG_RUNTIME_DIR/learnboard``
    or ``learnboard-<uid>`` in the system temp folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "learnboard"
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"learnboard-{uid}"


def _what_to_do(path: Path) -> str:
    return (f"learnboard keeps its port registry and locks only in a folder private to you; remove or fix "
            f"{path}, or set XDG_RUNTIME_DIR to a private folder of yours (e.g. /run/user/$(id -u))")


def check_private(path: Path) -> Path:
    """``path`` if it is a folder (not a symlink) owned by this user that no other user may
    write to; else an :class:`UnsafeFolder` naming it and what to do. A folder that others
    may only read (0755: what earlier versions made) is narrowed to 0700 on the spot:
    nobody else can have put anything into it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFolder(f"{path}: is a symlink or not a folder, so another user may have put it "
                               "there; " + _what_to_do(path)) from None
        raise
    try:  # checked (and narrowed) through the descriptor: the very folder that was opened
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeFolder(f"{path}: is not a folder; " + _what_to_do(path))
        if _POSIX:
            if st.st_uid != os.getuid():
                raise UnsafeFolder(f"{path}: owned by uid {st.st_uid}, not by you (uid {os.getuid()}): another "
                                   "user may have created it to read or redirect learnboard's files; "
                                   + _what_to_do(path))
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o022:
                raise UnsafeFolder(f"{path}: has mode {mode:04o}, so other users may write into it (want "
                                   "0700) and may have planted files there; " + _what_to_do(path))
            if mode & 0o077:
                os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def private_dir(*parts: str) -> Path:
    """The private run-time folder (or a subfolder ``parts`` of it), made with mode 0700
    where missing and checked (:func:`check_private`) at every level."""
    path = runtime_dir()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # an $XDG_RUNTIME_DIR not made yet
        for level in ("", *parts):
            path = path / level if level else path
            try:
                os.mkdir(path, 0o700)  # the umask may only narrow it
            except FileExistsError:
                pass
            check_private(path)
    except OSError as exc:
        raise LearnboardError(f"{path}: cannot make the private run-time folder ({exc.strerror}); "
                              + _what_to_do(path)) from None
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (in a private folder) all at once: into a new file made
    with ``O_EXCL | O_NOFOLLOW`` (mode 0600), then renamed over ``path``. A symlink at
    ``path`` is replaced, not followed; readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)  # left by a process of this pid that died mid-write
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_private(path: Path) -> bytes:
    """The bytes of ``path`` without following a symlink at it (OSError: ELOOP if one is there)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file ``path`` (created 0600 if missing), never through a
    symlink; the caller locks and closes it."""
    return os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
