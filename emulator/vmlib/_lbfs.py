"""The board's filesystem in the emulator's VM: the flash folder as ``/``, nothing beyond it.

A ``VfsPosix`` joins its root and the path it is given as text: ``/../..`` or a relative
path after ``chdir('..')`` reaches the host's folders, and a symbolic link in the flash
folder leads wherever it points. :func:`confine` mounts each folder as a :class:`Folder`
instead, which resolves every path itself first, as a board's FAT or littlefs does:
relative paths against its own current directory, ``.`` and ``..`` by their names
(``..`` of ``/`` is ``/``), and a symbolic link (a board's filesystem holds none) is not
there: listings skip every link, and a path to or through one of the links the host found
when the VM started (``learnboard.emulator.vm.symbolic_links``, passed in by the
bootstrap) raises ENOENT. Looking for links on every path instead would list folders on
every import and litter the heap while the firmware boots; a link made while the VM runs
counts from the next boot (on Linux the kernel refuses writes through it anyway, see
``learnboard.emulator.landlock``). Only the resolved absolute path reaches the
``VfsPosix``. The host process's working directory never changes.

:func:`confine` then makes ``import os``/``uos`` and ``import vfs`` give the board's
modules (``os.py``, also as ``vfs``): no ``system``, no ``VfsPosix``. The ``VfsPosix``
objects live only in :data:`_MOUNTS` of this module, which the bootstrap drops from
``sys.modules`` once it has run, so board code reaches them by no name (a fresh
``import _lbfs`` is a new, empty module).
"""

import sys

from micropython import const

# errno values (Linux's, as the VM's OSError from the host has them); MicroPython's errno
# module has no ENOTDIR
_ENOENT = const(2)
_ENOTDIR = const(20)
_LINK = const(0xA000)  # S_IFLNK: the type the unix port's ilistdir gives a symbolic link
_DIR = const(0x4000)

_MOUNTS = []
"""Per Folder: [VfsPosix, its symbolic links (board paths), rename relative, cwd]."""


def _nothing(*args):
    pass


class Folder:
    """A VFS object for ``vfs.mount``: a host folder with every path resolved inside it;
    ``n`` is its index in :data:`_MOUNTS`."""

    mount = umount = _nothing  # a folder needs no setup; vfs.mount looks for the method

    def _resolve(self, path):
        m = _MOUNTS[self.n]
        if not path.startswith("/"):
            path = ("" if m[3] == "/" else m[3]) + "/" + path
        if "/." in path:  # "." or ".." in it (or a name starting with "."): resolve
            # the slow way only for paths that need it: every import stats paths here, and
            # less garbage while the firmware boots leaves its heap in fewer pieces
            parts = []
            for name in path.split("/"):
                if name == "..":
                    if parts:
                        parts.pop()
                elif name and name != ".":
                    parts.append(name)
            path = "/" + "/".join(parts)
        for link in m[1]:  # a symbolic link, and all below it, is not there
            if path == link or path.startswith(link + "/"):
                raise OSError(_ENOENT)
        return path

    def open(self, path, mode):
        return _MOUNTS[self.n][0].open(self._resolve(path), mode)

    def stat(self, path):
        return _MOUNTS[self.n][0].stat(self._resolve(path))

    def statvfs(self, path):
        return _MOUNTS[self.n][0].statvfs(self._resolve(path))

    def mkdir(self, path):
        _MOUNTS[self.n][0].mkdir(self._resolve(path))

    def rmdir(self, path):
        _MOUNTS[self.n][0].rmdir(self._resolve(path))

    def remove(self, path):
        _MOUNTS[self.n][0].remove(self._resolve(path))

    def ilistdir(self, path):
        for entry in _MOUNTS[self.n][0].ilistdir(self._resolve(path)):
            if entry[1] != _LINK:
                yield entry

    def chdir(self, path):
        path = self._resolve(path)
        m = _MOUNTS[self.n]
        if not m[0].stat(path)[0] & _DIR:
            raise OSError(_ENOTDIR)
        m[3] = path

    def getcwd(self):
        return _MOUNTS[self.n][3]

    def rename(self, old, new):
        m = _MOUNTS[self.n]
        old, new = self._resolve(old), self._resolve(new)
        if m[2]:
            # VfsPosix of MicroPython 1.28 builds both absolute paths in one buffer, so the
            # second overwrites the first (ENOENT); a relative path is used as given
            new = new[1:] or "."
        m[0].rename(old, new)


def _folder(inner, readonly, links, at_cwd):
    inner.mount(readonly, False)  # VfsPosix refuses writes itself (EROFS)
    _MOUNTS.append([inner, links, at_cwd, "/"])
    f = Folder()
    f.n = len(_MOUNTS) - 1
    return f


def confine(flash, emu, mount_point, links=()):
    """Mount ``flash`` as ``/`` and the folders ``emu`` read-only at ``mount_point``
    (formatted with their index), each as a :class:`Folder`; install the board's
    ``os``/``uos``/``vfs``. ``links``: board paths of the flash folder's symbolic links.
    The emulator's own module folders are its cache, not the board's files: no links there."""
    import os  # the board's (os.py), read from the host paths before "/" changes

    import uos  # the VM's own, before it is replaced below

    posix = uos.VfsPosix
    at_cwd = uos.getcwd().rstrip("/") == flash.rstrip("/")  # the host's, before the remount
    uos.umount("/")
    uos.mount(_folder(posix(flash), False, links, at_cwd), "/")
    for i, d in enumerate(emu):
        uos.mount(_folder(posix(d), True, (), False), mount_point.format(i), readonly=True)
    uos.chdir("/")
    sys.modules["os"] = os
    sys.modules["uos"] = os
    sys.modules["vfs"] = os  # a board's vfs: mount, umount, VfsFat, VfsLfs1/2; os has them
    g = globals()
    for name in ("confine", "_folder"):  # their bytecode: heap for the firmware
        del g[name]
