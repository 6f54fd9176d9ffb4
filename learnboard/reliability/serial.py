"""Serial-fault campaign: training over a line that drops, corrupts and duplicates bytes.

The firmware runs in process (:class:`~learnboard.emulator.inprocess.InProcessBoard`)
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

from learnboard.emulator.inprocess import InProcessBoard
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
    with InProcessBoard(board, seed=seed, serial_faults=(to_board, to_host),
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
        link.call("status")  # a last answered request: every earlier frame arrived or is a gap
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
