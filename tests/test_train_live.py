"""The live dashboard renders what a user watches: progress, error/power trends, lambda,
link health and fault flags by name."""

from __future__ import annotations

import io
from types import SimpleNamespace

from learnboard.host.link import LinkStats
from learnboard.host.live import Live, fault_names, trend
from rich.console import Console


def test_fault_flags_by_name_and_trends():
    assert fault_names(0) == "none"
    assert fault_names(1 | 4) == "LIMIT|HOST_SILENT"
    assert trend([4, 3, 2, 1]) == "↓" and trend([1, 2, 3, 4]) == "↑" and trend([1, 1, 1, 1]) == "→"
    assert trend([1.0]) == " "


def test_dashboard_shows_progress_error_power_lambda_and_link_health():
    out = io.StringIO()
    live = Live(console=Console(file=out, width=120, force_terminal=False))
    live.total, live.label, live.tolerance = 1000, "emulated gen2-clln", 0.05
    live.link = SimpleNamespace(stats=LinkStats(rx_frames=42, tx_frames=7, bad_crc=3, seq_gaps=2))
    for s, e in ((10, 0.5), (20, 0.4), (30, 0.3), (40, 0.2)):
        live.update(SimpleNamespace(step=s), {"step": s, "rel_err": e, "pwr": 3e-4, "lam": 0.01, "flt": 1})
    live.console.print(live.render(40))
    text = out.getvalue()
    assert "step 40/1000" in text and "ETA" in text
    assert "0.2 ↓" in text and "tolerance 0.05" in text and "300 µW" in text
    assert "lambda" in text and "0.01" in text
    assert "CRC errors 3" in text and "gaps 2" in text and "frames rx 42" in text
    assert "LIMIT" in text


def test_monitor_only_listens_while_the_board_keeps_training():
    import numpy as np
    import pytest
    from learnboard.cli.connection import open_board
    from learnboard.host.live import read_only_request, watch

    with open_board() as conn:
        link = conn.link
        x = (np.array([[0.1, 0.3], [0.3, 0.1]])).tolist()
        link.call("upload_examples", x=x, y=[[0.1], [0.12]], clear=True)
        link.call("train", steps=0, every=2)  # until stop
        sent = []
        real = link.request
        link.request = lambda cmd, args=None, **kw: (sent.append(cmd), real(cmd, args, **kw))[1]
        frames = []
        watch(link, on_telemetry=frames.append, ask_every=0.2, stop=lambda: len(frames) >= 3)
        link.request = real
        assert len(frames) >= 3 and [f["step"] for f in frames] == sorted(f["step"] for f in frames)
        assert set(sent) <= {"status"}  # nothing that changes the board
        assert link.call("status")["state"] == "training"
        link.call("stop")
        with pytest.raises(ValueError, match="read-only"):
            read_only_request(link, "train", steps=1)
