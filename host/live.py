"""The live dashboard of ``learnboard train`` and ``learnboard monitor`` (rich).

Shows a progress bar with ETA on its own line, then a table: the relative error and the
board's power with their trends over the last telemetry frames, each power named by where
it comes from (the board's current sensor: *measured*; the firmware's device model:
*estimate*; the emulator's physics: *true*, not available on hardware) and in µW, lambda,
steps per second, link health (frames, CRC errors, gaps) and the board's fault flags. A
session calls ``start``, ``update`` per telemetry record, ``tick`` while it waits, and
``finish``; :class:`Quiet` does nothing.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

FAULTS = {1: "LIMIT", 2: "PARKED", 4: "HOST_SILENT", 8: "WATCHDOG", 16: "ADC_SATURATED",
          32: "END_STOP", 64: "SELF_TEST", 128: "TX_DROPPED", 256: "RX_BAD"}


def fault_names(flt: int) -> str:
    """``"LIMIT|PARKED"`` for the flag bits set, ``"none"`` for 0."""
    names = [n for bit, n in FAULTS.items() if flt & bit]
    return "|".join(names) if names else "none"


def trend(values: list[float]) -> str:
    """An arrow for the direction of the last values (down is good for error and power)."""
    v = [x for x in values if isinstance(x, (int, float)) and math.isfinite(x)]
    if len(v) < 4:
        return " "
    half = len(v) // 2
    old, new = sum(v[:half]) / half, sum(v[half:]) / (len(v) - half)
    if old == 0:
        return "→"
    r = (new - old) / abs(old)
    return "↓" if r < -0.02 else ("↑" if r > 0.02 else "→")


class Quiet:
    """A dashboard that shows nothing."""

    def start(self, session: Any) -> None: ...
    def update(self, session: Any, rec: dict) -> None: ...
    def tick(self, session: Any) -> None: ...
    def finish(self, session: Any, summary: Any) -> None: ...


def microwatts(watts: Any) -> str:
    """``"290.1 µW"`` for a power in W; ``"--"`` when there is none."""
    if not isinstance(watts, (int, float)) or not math.isfinite(watts):
        return "--"
    return f"{watts * 1e6:.4g} µW"


def power_source(rec: dict, default: str | None = None) -> str:
    """Where a record's board power comes from: ``"measured"`` (current sensor) or
    ``"estimate"`` (device model). A record without ``power_source`` is an estimate: earlier
    hosts and boards without a sensor wrote none."""
    src = rec.get("power_source") or default
    return "measured" if src == "measured" else "estimate"


SOURCE_WORDS = {"measured": "measured (current sensor)", "estimate": "estimate (device model)"}
BAR_WIDTH = 60


class Live:
    """A rich live view of one session (or of a board being monitored)."""

    def __init__(self, title: str = "learnboard train", console=None, refresh_per_second: float = 4):
        from rich.console import Console

        self.title = title
        self.console = console or Console(stderr=True)
        self.refresh = refresh_per_second
        self._live = None
        self.errs: deque[float] = deque(maxlen=20)
        self.pwrs: deque[float] = deque(maxlen=20)
        self.rate: deque[tuple[float, int]] = deque(maxlen=20)
        self.last: dict = {}
        self.total: int | None = None
        self.label = ""
        self.link = None
        self.tolerance: float | None = None
        self.power_source: str | None = None  # the session's, when it knows it
        self.true_power: float | None = None  # the emulator's, at the last evaluation
        self.true_note = ""  # when true_power was taken ("at step 0", "final")
        self.hardware: bool | None = None  # True: a real board (no true power); None: unknown
        self.t0 = time.monotonic()
        self._last_draw = 0.0

    # -- session hooks --------------------------------------------------------------------

    def start(self, session: Any) -> None:
        from rich.live import Live as RichLive

        self.total = session.config.schedule.total_steps
        self.label = session.conn.label
        self.link = session.link
        self.tolerance = session.runner.tolerance
        self.power_source = getattr(session, "power_source", None)
        self.hardware = not getattr(session.conn, "emulated", False)
        tp0 = getattr(session, "tp0", None)
        if isinstance(tp0, (int, float)):
            self.true_power, self.true_note = float(tp0), "at step 0"
        self.t0 = time.monotonic()
        self._live = RichLive(self.render(session.step), console=self.console,
                              refresh_per_second=self.refresh, transient=False)
        self._live.start()

    def update(self, session: Any, rec: dict) -> None:
        self.last = rec
        self.errs.append(rec.get("rel_err", math.nan))
        self.pwrs.append(rec.get("pwr", math.nan))
        self.rate.append((time.monotonic(), int(rec.get("step", 0))))
        tp = rec.get("true_power", rec.get("true_pwr"))
        if isinstance(tp, (int, float)):
            self.true_power, self.true_note = float(tp), f"at step {int(rec.get('step', 0))}"
        self._draw(int(rec.get("step", 0)))

    def tick(self, session: Any) -> None:
        if time.monotonic() - self._last_draw > 1.0:
            self._draw(int(self.last.get("step", session.step)))

    def finish(self, session: Any, summary: Any) -> None:
        d = summary.as_dict() if hasattr(summary, "as_dict") else {}
        if isinstance(d.get("true_power"), (int, float)):
            self.true_power, self.true_note = float(d["true_power"]), "final evaluation"
        if d.get("power_source"):
            self.power_source = d["power_source"]
        if self._live is not None:
            self._live.update(self.render(summary.steps))
            self._live.stop()
            self._live = None

    # -- drawing --------------------------------------------------------------------------

    def _draw(self, step: int) -> None:
        self._last_draw = time.monotonic()
        if self._live is not None:
            self._live.update(self.render(step))

    def steps_per_second(self) -> float:
        if len(self.rate) < 2:
            return math.nan
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else math.nan

    def power_rows(self) -> list[tuple[str, str]]:
        """The dashboard's power rows: each power named by its source, in µW."""
        rec = self.last
        trend_p = trend(list(self.pwrs))
        rows = []
        if "pwr_m" in rec and not rec.get("power_source"):
            # a board with a current sensor sends both: its sensor reading and its model's figure
            rows.append(("board power", f"{microwatts(rec['pwr_m'])}  {SOURCE_WORDS['measured']}"))
            rows.append(("", f"{microwatts(rec.get('pwr'))} {trend_p}  {SOURCE_WORDS['estimate']}"))
        else:
            src = power_source(rec, self.power_source)
            rows.append(("board power", f"{microwatts(rec.get('pwr'))} {trend_p}  {SOURCE_WORDS[src]}"))
        # telemetry carries the total (pwr) and the clamped network's part (pwr_c)
        clamped = rec.get("power_clamped", rec.get("pwr_c"))
        free = rec.get("power_free")
        if free is None and isinstance(clamped, (int, float)) and isinstance(rec.get("pwr"), (int, float)):
            free = rec["pwr"] - clamped
        if isinstance(free, (int, float)) and isinstance(clamped, (int, float)):
            rows.append(("", f"free {microwatts(free)} + clamped {microwatts(clamped)}"))
        if self.true_power is not None:
            rows.append(("true power", f"{microwatts(self.true_power)}  emulator, {self.true_note}"))
        elif self.hardware:
            rows.append(("true power", "n/a (hardware)"))
        else:
            rows.append(("true power", "n/a"))
        return rows

    def render(self, step: int):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        sps = self.steps_per_second()
        # the bar is a row of its own grid: rich draws a bare ProgressBar without a line
        # end, so the table would start on the bar's line
        lines = Table.grid()
        lines.add_column(overflow="fold")  # a long run folder name wraps, never cut
        if self.total:
            left = (self.total - step) / sps if sps and sps > 0 and math.isfinite(sps) else math.nan
            eta = "--" if not math.isfinite(left) else time.strftime("%H:%M:%S", time.gmtime(max(0, left)))
            lines.add_row(Text(f"{self.title}  {self.label}  step {step}/{self.total}  ETA {eta}"))
            width = max(10, min(BAR_WIDTH, self.console.width - 1))
            lines.add_row(ProgressBar(total=self.total, completed=min(step, self.total), width=width))
        else:
            lines.add_row(Text(f"{self.title}  {self.label}  step {step}"))
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        rec = self.last
        err = rec.get("rel_err", math.nan)
        tol = self.tolerance
        t.add_row("error C/C0", f"{err:.3g} {trend(list(self.errs))}"
                  + (f"  tolerance {tol:.3g}" if tol else ""))
        for name, value in self.power_rows():
            t.add_row(name, value)
        t.add_row("lambda", f"{rec.get('lam', 0.0):.3g}")
        t.add_row("steps/s", f"{sps:.3g}")
        if self.link is not None:
            st = self.link.stats
            t.add_row("link", f"frames rx {st.rx_frames} tx {st.tx_frames}  CRC errors {st.bad_crc}  "
                      f"gaps {st.seq_gaps}  retries {st.retries}  timeouts {st.timeouts}")
        t.add_row("faults", fault_names(int(rec.get("flt", 0))))
        return Group(lines, t)


READ_ONLY = frozenset({"hello", "status", "stats", "get_params"})
"""The only requests ``learnboard monitor`` sends: none of them changes the board."""


def watch(link: Any, *, seconds: float | None = None, on_telemetry=None, on_event=None,
          ask_every: float = 5.0, stop=None) -> int:
    """Listen to a board's telemetry and events without changing anything.

    Calls ``on_telemetry(frame)`` and ``on_event(name, data)``; every ``ask_every``
    seconds asks ``status`` (read-only). Returns the number of telemetry frames seen.
    ``stop()`` returning True ends it early."""
    deadline = None if seconds is None else time.monotonic() + seconds
    last_ask = time.monotonic()
    seen = 0
    while (deadline is None or time.monotonic() < deadline) and not (stop and stop()):
        t = link.next_telemetry(timeout=0.1)
        if t is not None:
            seen += 1
            if on_telemetry is not None:
                on_telemetry(t)
        ev = link.next_event(timeout=0)
        if ev is not None and on_event is not None:
            on_event(*ev)
        if time.monotonic() - last_ask > ask_every:
            last_ask = time.monotonic()
            read_only_request(link, "status")
    return seen


def read_only_request(link: Any, command: str, **args: Any) -> Any:
    """``link.request`` for commands in :data:`READ_ONLY` only."""
    if command not in READ_ONLY:
        raise ValueError(f"{command!r} would change the board; the monitor is read-only")
    return link.request(command, args)
