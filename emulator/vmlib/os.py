"""``os`` for the emulator's VM: what a board's ``os`` has, and nothing that reaches the host.

The unix port's built-in module also has ``system``, ``putenv``/``unsetenv`` and
``VfsPosix``, which run host commands or mount host folders; a board has none of them, so
they are not here, and the bootstrap makes ``import uos`` and ``import vfs`` give this
module too (``_lbfs.py``). The names taken are the built-in functions themselves, which
act through the mounted filesystems only; no name here leads back to the built-in module.
``getenv`` stays: the emulator's own ``machine``/``time``/``select`` read their socket and
settings from the environment. ``ilistdir`` gives file sizes, as a board's VFS does (the
unix port gives none; ``mpremote fs ls`` shows them).
"""

from uos import (  # noqa: F401
    VfsFat,
    VfsLfs1,
    VfsLfs2,
    chdir,
    getcwd,
    getenv,
    listdir,
    mkdir,
    mount,
    remove,
    rename,
    rmdir,
    sep,
    stat,
    statvfs,
    umount,
    unlink,
    urandom,
)
from uos import ilistdir as _ilistdir


def ilistdir(path="."):
    prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
    for entry in _ilistdir(path):
        if len(entry) < 4:
            size = 0
            if entry[1] == 0x8000:
                try:
                    size = stat(prefix + entry[0])[6]
                except OSError:
                    pass
            entry = (entry[0], entry[1], entry[2], size)
        yield entry


def sync():
    """Flush the filesystem (a no-op here: the host's files are written through)."""
