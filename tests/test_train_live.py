"""The live dashboard renders what a user watches: progress, error/power trends, lambda,
link health and fault flags by name."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
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
    assert "estimate (device model)" in text  # a board power without a source is an estimate
    assert "lambda" in text and "0.01" in text
    assert "CRC errors 3" in text and "gaps 2" in text and "frames rx 42" in text
    assert "LIMIT" in text


def _screen(live: Live, width: int, step: int) -> list[str]:
    """The dashboard as a terminal of ``width`` columns shows it, line by line."""
    live.console = Console(width=width, record=True, file=io.StringIO(), force_terminal=True)
    live.console.print(live.render(step))
    return live.console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 150])
@pytest.mark.parametrize("board", ["sensor", "emulated", "hardware"])
def test_dashboard_names_each_power_and_keeps_bar_and_table_apart(width, board):
    """Each power is named by its source with its unit; the progress bar has a line of its
    own and no row is cut, on a narrow and a wide terminal."""
    live = Live()
    live.total, live.label, live.tolerance = 100000, "/dev/ttyACM0", 0.0380362
    live.link = SimpleNamespace(stats=LinkStats(rx_frames=123456, tx_frames=98765, bad_crc=12,
                                                seq_gaps=3, retries=4, timeouts=1))
    live.hardware = board == "hardware"
    if board == "emulated":
        live.true_power, live.true_note = 1.438e-4, "at step 0"
    for s in range(10, 90, 10):
        rec = {"step": s, "rel_err": 0.5 / s, "pwr": 2.449e-4, "lam": 1.5e-9, "flt": 4}
        if board == "sensor":
            rec["pwr_m"] = 1.2e-4
        live.update(None, rec)
    lines = _screen(live, width, 80)
    bar = [i for i, line in enumerate(lines) if "━" in line]
    assert len(bar) == 1, lines
    assert set(lines[bar[0]].strip()) <= set("━╺╸ "), f"the bar shares its line: {lines[bar[0]]!r}"
    assert all(len(line.rstrip()) <= width for line in lines)
    text = "\n".join(lines)
    assert "step 80/100000" in text and "tolerance 0.038" in text and "HOST_SILENT" in text
    assert "timeouts 1" in text  # the longest row is whole, not cut at the edge
    if board == "sensor":
        assert "120 µW  measured (current sensor)" in text
        assert "244.9 µW" in text and "estimate (device model)" in text
    else:
        assert "board power  244.9 µW" in text and "estimate (device model)" in text
    if board == "emulated":
        assert "true power   143.8 µW  emulator, at step 0" in text
    elif board == "hardware":
        assert "true power   n/a (hardware)" in text


def test_dashboard_takes_the_power_source_and_final_true_power_of_the_summary():
    live = Live()
    live.total = 100
    live.update(None, {"step": 100, "rel_err": 0.01, "pwr": 1e-4, "lam": 0.1, "flt": 0,
                       "power_source": "measured"})
    live.finish(None, SimpleNamespace(steps=100, as_dict=lambda: {"true_power": 9.5e-5,
                                                                   "power_source": "measured"}))
    text = "\n".join(_screen(live, 80, 100))
    assert "100 µW" in text and "measured (current sensor)" in text
    assert "95 µW  emulator, final evaluation" in text


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
