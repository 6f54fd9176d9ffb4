"""The board's own description, ``board.json`` on its flash (see ``docs/board-format.md``).

Read as a stream, in small pieces: after the firmware's modules are compiled from source
the 192 KB heap of a small board may have no contiguous room for the whole file (6.4 kB
for gen2), while the parse tree is many small objects.
"""


def file_sha256(path):
    """Hex SHA-256 of a file on flash, None when there is no such file."""
    import hashlib
    try:
        from binascii import hexlify
    except ImportError:  # pragma: no cover
        from ubinascii import hexlify
    h = hashlib.sha256()
    buf = bytearray(128)
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == len(buf) else buf[:n])
    except OSError:
        return None
    return hexlify(h.digest()).decode()


def load_description(path="board.json"):
    """``(body, sha256 hex)`` of a compiled board description; ValueError if corrupt.

    The body is bytes ``[5:-72]`` of the file (``learnboard.boards.compile``)."""
    import gc
    import hashlib
    import json
    import os
    try:
        from binascii import hexlify
    except ImportError:  # pragma: no cover
        from ubinascii import hexlify
    gc.collect()
    end = os.stat(path)[6] - 72
    h = hashlib.sha256()
    buf = bytearray(128)
    with open(path, "rb") as f:
        f.seek(5)
        left = end - 5
        while left > 0:
            n = f.readinto(buf)
            if not n:
                break
            n = min(n, left)
            h.update(buf if n == len(buf) else buf[:n])
            left -= n
        f.seek(0)
        d = json.load(f)
    h = hexlify(h.digest()).decode()
    if left or d.get("h") != h:
        raise ValueError("board.json: hash mismatch (file corrupt or edited)")
    return d["b"], h
