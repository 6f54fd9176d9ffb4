"""Follow a MicroPython REPL from the bytes that cross the serial line.

The virtual port needs one fact when the VM process ends: was the board in the raw
REPL (a soft reset runs boot.py only, and the board comes back in the raw REPL) or in
the friendly REPL (boot.py then main.py)? :class:`ReplTracker` keeps that ``mode``
from the REPL's own banners, and a finer ``state`` (friendly / raw / raw-paste /
running / booting) from both directions, for status and tests.
"""

from __future__ import annotations

BOOTING = "booting"
FRIENDLY = "friendly"
RAW = "raw"
RAW_PASTE = "raw-paste"
RUNNING = "running"

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_BANNER = b'Type "help()" for more information.\r\n'
_PASTE_REQUEST = b"\x05A\x01"
_TAIL = max(len(RAW_BANNER), len(FRIENDLY_BANNER))


class ReplTracker:
    """REPL mode and state, updated from the bytes to and from the board."""

    def __init__(self) -> None:
        self.mode = FRIENDLY
        """``"friendly"`` or ``"raw"``: what a soft reset returns to."""
        self.state = BOOTING
        self._out_tail = b""
        self._in_tail = b""
        self._exec_sent = False
        self._paste_sent = False
        self._line_sent = False

    def reboot(self, mode: str) -> None:
        """A new VM boots and will come back in ``mode``."""
        self.mode = mode
        self.state = BOOTING
        self._out_tail = self._in_tail = b""
        self._exec_sent = self._paste_sent = self._line_sent = False

    def feed_input(self, data: bytes) -> None:
        """Bytes the host sent to the board."""
        if not data:
            return
        seen = self._in_tail + data
        if self.state in (RAW, RAW_PASTE) and b"\x04" in data:
            self._exec_sent = True
        if self.state == RAW and _PASTE_REQUEST in seen:
            self._paste_sent = True
        if self.state == FRIENDLY and b"\r" in data:
            self._line_sent = True
        self._in_tail = seen[-len(_PASTE_REQUEST) :]

    def feed_output(self, data: bytes) -> None:
        """Bytes the board sent to the host (after the emulator's own filtering)."""
        if not data:
            return
        seen = self._out_tail + data
        raw_at = seen.rfind(RAW_BANNER)
        friendly_at = seen.rfind(FRIENDLY_BANNER)
        if raw_at >= 0 or friendly_at >= 0:
            # The later banner wins: Ctrl-B prints the friendly banner after a raw one.
            if raw_at > friendly_at:
                self.mode, self.state = RAW, RAW
                after = seen[raw_at + len(RAW_BANNER) :]
            else:
                self.mode, self.state = FRIENDLY, FRIENDLY
                after = seen[friendly_at + len(FRIENDLY_BANNER) :]
            self._exec_sent = self._paste_sent = self._line_sent = False
            self._out_tail = after[-_TAIL:]
            if after and self.mode == RAW:
                self._follow_raw(after)
            return
        if self.mode == RAW:
            self._follow_raw(data)
        elif self.state in (FRIENDLY, RUNNING):
            if seen.endswith((b">>> ", b"... ")):
                self.state = FRIENDLY
                self._line_sent = False
            elif self._line_sent:
                self.state = RUNNING
        self._out_tail = seen[-_TAIL:]

    def _follow_raw(self, data: bytes) -> None:
        if self.state == RAW and self._paste_sent and b"R\x01" in data:
            self.state, self._paste_sent = RAW_PASTE, False
            data = data[data.index(b"R\x01") + 2 :]
        if self.state == RAW and self._exec_sent and b"OK" in data:
            # Raw REPL: "OK" acknowledges the code, then it runs.
            self.state, self._exec_sent = RUNNING, False
            data = data[data.index(b"OK") + 2 :]
        elif self.state == RAW_PASTE and self._exec_sent and b"\x04" in data:
            # Raw-paste: a Ctrl-D acknowledges the end of the code, then it runs.
            self.state, self._exec_sent = RUNNING, False
            data = data[data.index(b"\x04") + 1 :]
        if self.state == RUNNING and data and (self._out_tail + data).endswith(b"\x04>"):
            # End of an execution: "\x04" stdout/stderr split, "\x04", then the ">" prompt.
            self.state = RAW
