"""``os`` for the emulator's VM: the built-in module, with ``ilistdir`` giving sizes.

The unix port's ``ilistdir`` yields (name, type, inode); a board's VFS adds the file
size, which ``mpremote fs ls`` shows. Directories report 0, as on a board.
"""

import uos
from uos import *  # noqa: F403


def ilistdir(path="."):
    prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
    for entry in uos.ilistdir(path):
        if len(entry) < 4:
            size = 0
            if entry[1] == 0x8000:
                try:
                    size = uos.stat(prefix + entry[0])[6]
                except OSError:
                    pass
            entry = (entry[0], entry[1], entry[2], size)
        yield entry
