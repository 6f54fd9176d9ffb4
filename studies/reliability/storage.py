"""Storage faults injected at the operating-system calls: a full disk (ENOSPC) or a
read-only file system (EROFS) for paths under one folder (the runs folder).

The calls wrapped are ``os.mkdir``, ``open``/``io.open`` for writing, ``os.open``,
``os.write``, ``os.fsync`` and ``os.replace``: below the code under test, so a fault
works without root privileges and under root (CI), where a read-only ``chmod`` stops
nothing. Used by ``tests/test_reliability_storage.py``, ``benchmarks/reliability_storage.py``
and the lab campaign (``learnboard.studies.reliability.lab``).
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Patcher(Protocol):
    """What :meth:`DiskFault.install` needs: ``pytest.MonkeyPatch`` or :class:`Patches`."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


class Patches:
    """A minimal attribute patcher (``setattr`` / ``undo``) for use outside pytest."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


class DiskFault:
    """Make the ``nth`` matching call of ``op`` on a path under ``root`` whose path relative
    to ``root`` matches ``pattern`` raise ``OSError(err)``; record every call seen.

    ``op=None`` records only; ``op="any"`` matches every wrapped call. ``sticky``: once
    fired, every later call under ``root`` fails the same way (a disk that stays full)
    until :meth:`space_back`."""

    def __init__(self, root: Path, op: str | None = None, pattern: str = "", nth: int = 1,
                 err: int = errno.ENOSPC, *, sticky: bool = False):
        self.root = str(Path(root).resolve())
        self.op, self.pattern, self.nth, self.err = op, re.compile(pattern), nth, err
        self.sticky = sticky
        self.seen: list[tuple[str, str]] = []
        self.count = 0
        self.fired: str | None = None
        self.refused = 0  # calls failed (the first and, when sticky, the later ones)
        self._full = False

    def _rel(self, path) -> str | None:
        try:
            p = os.path.abspath(os.fspath(path))
        except TypeError:
            return None
        return os.path.relpath(p, self.root) if p.startswith(self.root) else None

    def _fd_rel(self, fd: int) -> str | None:
        try:
            return self._rel(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return None

    def space_back(self) -> None:
        """The disk has room again: a sticky fault stops failing calls."""
        self._full = False

    def _raise(self, rel: str) -> None:
        self.refused += 1
        raise OSError(self.err, os.strerror(self.err), os.path.join(self.root, rel))

    def check(self, op: str, rel: str | None) -> None:
        if rel is None:
            return
        self.seen.append((op, rel))
        if self._full:
            self._raise(rel)
        if self.fired is None and self.op in (op, "any") and self.pattern.search(rel):
            self.count += 1
            if self.count == self.nth:
                self.fired = f"{op} {rel}"
                self._full = self.sticky
                self._raise(rel)

    def install(self, monkeypatch: Patcher) -> DiskFault:
        real_open, real_io_open = builtins.open, io.open
        real = {n: getattr(os, n) for n in ("mkdir", "open", "write", "fsync", "replace")}

        def wrap_open(real_fn):
            def opener(file, mode="r", *args, **kwargs):
                if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
                    self.check("open", self._rel(file))
                return real_fn(file, mode, *args, **kwargs)
            return opener

        def mkdir(path, *a, **k):
            self.check("mkdir", self._rel(path))
            return real["mkdir"](path, *a, **k)

        def os_open(path, flags, *a, **k):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                self.check("os.open", self._rel(path))
            return real["open"](path, flags, *a, **k)

        def write(fd, data):
            self.check("write", self._fd_rel(fd))
            return real["write"](fd, data)

        def fsync(fd):
            self.check("fsync", self._fd_rel(fd if isinstance(fd, int) else fd.fileno()))
            return real["fsync"](fd)

        def replace(src, dst, *a, **k):
            self.check("replace", self._rel(dst))
            return real["replace"](src, dst, *a, **k)

        monkeypatch.setattr(builtins, "open", wrap_open(real_open))
        monkeypatch.setattr(io, "open", wrap_open(real_io_open))
        for name, fn in (("mkdir", mkdir), ("open", os_open), ("write", write), ("fsync", fsync),
                         ("replace", replace)):
            monkeypatch.setattr(os, name, fn)
        return self


@contextmanager
def disk_fault(fault: DiskFault) -> Iterator[DiskFault]:
    """``fault`` installed for the ``with`` block (without pytest)."""
    patches = Patches()
    fault.install(patches)
    try:
        yield fault
    finally:
        patches.undo()
