"""Serial-fault campaigns: training over a line that drops, corrupts and duplicates bytes
(:func:`run_serial_campaign`), and a whole session over a line with random bytes inserted
(:func:`run_insert_campaign`).

The firmware runs in process (:class:`~learnboard.emulator.inprocess_board.InProcessBoard`)
behind two faulty lines. The host uploads examples, trains with telemetry every step and
polls ``status`` until the board reports the run finished. What must hold:

- the run completes (every request eventually answered; retries by request id);
- every frame that did not arrive is accounted for as a gap: the board's frames sent
  = frames the host decoded + frames missing by sequence number
  (:attr:`SerialReport.unaccounted` is 0);
- no command runs twice: requests executed on the board <= distinct requests the host
  sent, and every retry the board saw was answered from its reply cache;
- the board's bad-frame counter is nonzero exactly when faults hit the host->board line.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from learnboard.cli.connection import LinkedInProcessBoard
from learnboard.emulator.serial_faults import SerialFaults


@dataclass
class SerialReport:
    kind: str
    rate: float
    steps: int
    telemetry_received: int
    telemetry_gaps: int  # steps whose telemetry never arrived
    injected_to_board: int  # faulty bytes host -> board
    injected_to_host: int
    board_tx_frames: int
    host_rx_frames: int
    host_seq_gaps: int  # board frames the host never decoded, found by sequence number
    board_bad_frames: int
    host_bad_frames: int
    host_requests: int
    host_retries: int
    board_requests: int
    board_cache_hits: int
    completed: bool

    @property
    def unaccounted(self) -> int:
        """Board frames neither decoded nor seen missing by the host (should be 0)."""
        return self.board_tx_frames - self.host_rx_frames - self.host_seq_gaps

    def as_dict(self) -> dict:
        return {**asdict(self), "unaccounted": self.unaccounted}


def run_serial_campaign(kind: str, rate: float, *, steps: int = 60, seed: int = 0,
                        board: str = "gen2-clln", timeout_s: float = 300.0) -> SerialReport:
    """Train ``steps`` steps with faults of ``kind`` (drop, corrupt, dup) at ``rate``
    per byte on both directions; return what was sent, lost and counted."""
    rates = {f"{kind}_rate": rate}
    seq = np.random.SeedSequence(seed)
    to_board, to_host = (SerialFaults(**rates, seed=s) for s in seq.spawn(2))
    with LinkedInProcessBoard(board, seed=seed, serial_faults=(to_board, to_host),
                              link_timeout=0.3, link_retries=40) as emu:
        link = emu.link
        n_in = sum(1 for p in emu.board.inputs if p.fixed is None)
        n_out = len(emu.board.outputs)
        rng = np.random.default_rng(seed)
        vn = emu.board.limits.max_node_volts
        x = rng.uniform(0, 0.8 * vn, (2, n_in))
        y = rng.uniform(0, 0.5 * vn, (2, n_out))
        link.call("upload_examples", start=0, x=x.tolist(), y=y.tolist(), clear=True)
        link.call("train", steps=steps, every=1)
        seen: set[int] = set()
        deadline = time.monotonic() + timeout_s
        completed = False
        while time.monotonic() < deadline:
            tlm = link.next_telemetry(timeout=0.2)
            if tlm is not None:
                seen.add(int(tlm["step"]))
                if len(seen) % 5:
                    continue
            # polls as a session does: traffic towards the board while it trains
            st = link.call("status")  # also keeps the board from parking on host silence
            if st["state"] != "training":
                completed = st["step"] >= steps
                break
        time.sleep(0.2)  # let the last frames arrive before counting
        while (tlm := link.next_telemetry(timeout=0.05)) is not None:
            seen.add(int(tlm["step"]))
        # a last request answered at its first try: every earlier frame arrived or shows
        # as a gap by sequence number (a retry of it, answered from the board's cache after
        # the host had its answer, would be a last frame whose loss nothing reveals)
        for _ in range(20):
            retries = link.stats.retries
            link.call("status")
            if link.stats.retries == retries:
                break
        time.sleep(0.3)  # a retry still in flight would be answered from the cache now
        with emu.lock:  # the board's own counters, read beside the line, not through it
            board_stats = emu.app.srv.counters()
        host = link.stats
    bad_keys = ("bad_crc", "bad_cobs", "short", "oversize", "bad_version", "bad_type", "bad_body")
    ib, ih = to_board.snapshot(), to_host.snapshot()
    return SerialReport(
        kind=kind, rate=rate, steps=steps,
        telemetry_received=len(seen & set(range(1, steps + 1))),
        telemetry_gaps=steps - len(seen & set(range(1, steps + 1))),
        injected_to_board=ib.dropped + ib.corrupted + ib.duplicated,
        injected_to_host=ih.dropped + ih.corrupted + ih.duplicated,
        board_tx_frames=board_stats["tx_frames"],
        host_rx_frames=host.rx_frames, host_seq_gaps=host.seq_gaps,
        board_bad_frames=board_stats["bad"], host_bad_frames=sum(getattr(host, k) for k in bad_keys),
        host_requests=host.requests, host_retries=host.retries,
        board_requests=board_stats["requests"], board_cache_hits=board_stats["retries"],
        completed=completed,
    )


@dataclass
class InsertReport:
    """One training session over a line with random bytes inserted (both directions)."""

    rate: float  # inserted bytes per second, each direction
    duration_s: float  # board seconds of training with the noise on
    completed: bool
    stop_reason: str
    steps: int
    inserted_to_board: int
    inserted_to_host: int
    control_to_board: int  # inserted bytes < 0x20 (0x00, Ctrl-C, ...) towards the board
    board_telemetry_sent: int
    host_telemetry_received: int
    telemetry_lost_on_line: int  # sent by the board, never decoded by the host
    telemetry_gaps: int  # steps without a telemetry record in the run log
    log_telemetry: int  # telemetry records in the run log
    host_requests: int
    host_retries: int
    host_timeouts: int
    board_requests: int
    board_cache_hits: int
    board_bad_frames: int
    host_bad_frames: int
    board_tx_frames: int
    host_rx_frames: int
    host_seq_gaps: int
    error: str = ""

    @property
    def unaccounted(self) -> int:
        """Board frames neither decoded nor seen missing by the host (should be 0)."""
        return self.board_tx_frames - self.host_rx_frames - self.host_seq_gaps

    @property
    def log_lost(self) -> int:
        """Telemetry the host received but the run log lacks (should be 0)."""
        return self.host_telemetry_received - self.log_telemetry

    def as_dict(self) -> dict:
        return {**asdict(self), "unaccounted": self.unaccounted, "log_lost": self.log_lost}


def run_insert_campaign(rate: float, *, duration_s: float = 60.0, seed: int = 0,
                        board: str = "gen2-clln", runs_dir: str | None = None,
                        telemetry_every: int = 1, chunk: int = 50) -> InsertReport:
    """A ``learnboard train`` session (:func:`~learnboard.host.session.run_session`, run
    folder and log included) on the in-process board while ``rate`` random bytes per
    second (uniform 0..255: 0x00 and control characters included) are inserted into each
    direction of the line, for ``duration_s`` seconds of the board's virtual clock.

    What must hold: the session completes; the telemetry records lost on the line (sent
    by the board, never decoded) are exactly the steps missing from the log (gaps), and
    nothing the host received is missing from the log; no request runs twice on the
    board (requests run = distinct requests sent, repeats answered from the cache)."""
    import tempfile
    import threading
    from pathlib import Path

    from learnboard.host.connect import Connection
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.runlog import read_log
    from learnboard.host.schedule import schedule_from_flags
    from learnboard.host.session import TrainConfig, run_session

    seq = np.random.SeedSequence(seed)
    to_board, to_host = (SerialFaults(insert_rate=rate, seed=s) for s in seq.spawn(2))
    sched = schedule_from_flags(steps=10**7)  # the virtual clock ends the session
    sched.chunk = chunk
    cfg = TrainConfig(schedule=sched, telemetry_every=telemetry_every, checkpoint_every=10 * chunk,
                      seed=seed, name=f"insert-{rate:g}")
    tmp = None if runs_dir is not None else tempfile.TemporaryDirectory(prefix="lb-insert-")
    folder = Path(runs_dir if runs_dir is not None else tmp.name)
    try:
        with LinkedInProcessBoard(board, seed=seed, serial_faults=(to_board, to_host),
                                  link_timeout=0.5, link_retries=8) as emu:
            stop = threading.Event()
            clock = emu.world.clock
            t_end = [None]

            def watch() -> None:  # end the session once the noise ran duration_s board seconds
                while not stop.wait(0.05):
                    now = clock.now_s
                    if t_end[0] is None:
                        t_end[0] = now + duration_s
                    elif now >= t_end[0]:
                        stop.set()

            hello = emu.link.hello()
            conn = Connection(emu.link, hello, emu.board, f"emulated {emu.board.name}", emulated=True,
                              truth=emu)
            rf = RunFolder.create(folder, cfg.name)
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            error, reason, steps = "", "", 0
            try:
                summary = run_session(conn, cfg, rf, stop_event=stop)
                reason, steps = summary.stop_reason, summary.steps
            except Exception as exc:  # reported: the campaign counts sessions that died
                error = f"{type(exc).__name__}: {exc}"
            stop.set()
            watcher.join(2)
            with emu.lock:  # the board's own counters, read beside the line, not through it
                board_stats = emu.app.srv.counters()
                board_tlm = emu.app.tlm_count
            host = emu.link.stats
        log = read_log(rf.log_path)
    finally:
        if tmp is not None:
            tmp.cleanup()
    tlm_steps = [int(r["step"]) for r in log if r.get("kind") == "tlm"]
    # telemetry every step of every chunk: the steps without a record are the gaps
    gaps = steps // telemetry_every - len(set(tlm_steps))
    bad_keys = ("bad_crc", "bad_cobs", "short", "oversize", "bad_version", "bad_type", "bad_body")
    ib, ih = to_board.snapshot(), to_host.snapshot()
    return InsertReport(
        rate=rate, duration_s=duration_s, completed=not error and reason == "interrupted",
        stop_reason=reason or "died", steps=steps,
        inserted_to_board=ib.inserted, inserted_to_host=ih.inserted,
        control_to_board=ib.inserted_control,
        board_telemetry_sent=board_tlm, host_telemetry_received=host.rx_telemetry,
        telemetry_lost_on_line=board_tlm - host.rx_telemetry,
        telemetry_gaps=gaps, log_telemetry=len(tlm_steps),
        host_requests=host.requests, host_retries=host.retries, host_timeouts=host.timeouts,
        board_requests=board_stats["requests"], board_cache_hits=board_stats["retries"],
        board_bad_frames=board_stats["bad"], host_bad_frames=sum(getattr(host, k) for k in bad_keys),
        board_tx_frames=board_stats["tx_frames"], host_rx_frames=host.rx_frames,
        host_seq_gaps=host.seq_gaps, error=error,
    )
