"""Board identity: the MCU's unique id, as hello reports it (``uid``, lower-case hex).

A real RP2040 reports its flash chip's 64-bit unique id. An emulated board reports
``emulated_uid(board, seed)``: the three ASCII bytes ``LBE`` (hex ``4c4245``) followed by
the first five bytes of SHA-256 of ``"<board>/<seed>"``. It is stable for a board name
and world seed (the same emulated board gets the same id every time, so its calibration
and runs find it again) and differs between boards and seeds; the prefix marks it as
emulated, so host code never takes it for a real board.
"""

from __future__ import annotations

import hashlib

EMULATED_PREFIX = b"LBE"
UID_BYTES = 8


def emulated_uid(board: str, seed: int) -> bytes:
    """The 8-byte unique id of the emulated ``board`` with world ``seed``."""
    digest = hashlib.sha256(f"{board}/{int(seed)}".encode()).digest()
    return EMULATED_PREFIX + digest[:UID_BYTES - len(EMULATED_PREFIX)]


def is_emulated(uid: str | None) -> bool:
    """Whether hello's ``uid`` (hex) is an emulated board's."""
    return isinstance(uid, str) and uid.lower().startswith(EMULATED_PREFIX.hex())


def describe(uid: str | None) -> str:
    """``uid`` for a message: the hex id, marked when emulated, or 'no id'."""
    if not uid:
        return "no unique id (firmware older than protocol 3)"
    return f"{uid} (emulated)" if is_emulated(uid) else uid
