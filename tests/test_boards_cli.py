"""The ``learnboard board`` command: list, show (with --plot), check, compile."""

from __future__ import annotations

import pytest
from learnboard.cli import main

from learnboard.boards import CompiledBoard, compile_board, load_board


def test_list(capsys):
    assert main(["board", "list"]) == 0
    out = capsys.readouterr().out
    assert "gen1-digipot" in out and "gen2-clln" in out
    assert compile_board(load_board("gen2-clln")).short_id in out


def test_show_prints_tables_and_hash(capsys, tmp_path):
    png = tmp_path / "gen2.png"
    assert main(["board", "show", "gen2-clln", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for text in ("nodes", "edges", "inputs and outputs", "wiring", "safety limits",
                 compile_board(load_board("gen2-clln")).sha256, "GPIO 26", "x7"):
        assert text in out, text
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_show_gen1_plot(tmp_path, capsys):
    png = tmp_path / "g1.png"
    assert main(["board", "show", "gen1-digipot", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "tap range" in capsys.readouterr().out


def test_compile_and_check(tmp_path, capsys):
    out = tmp_path / "board.json"
    assert main(["board", "compile", "gen1-digipot", "-o", str(out)]) == 0
    compiled = CompiledBoard.read(out)
    assert compiled == compile_board(load_board("gen1-digipot"))
    assert compiled.sha256 in capsys.readouterr().out
    assert main(["board", "check", str(out)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_check_bad_file_reports_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    text = load_board("gen1-digipot").source
    bad.write_text(open(text).read().replace("max_edge_amps = 0.001", "max_edge_amps = 0.01"))
    assert main(["board", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: limits.max_edge_amps:" in err and "Traceback" not in err


def test_check_syntax_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[board\n")
    assert main(["board", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "TOML syntax error" in err and "line 1" in err


def test_compile_to_unwritable_path(tmp_path, capsys):
    assert main(["board", "compile", "gen1-digipot", "-o", str(tmp_path / "no" / "b.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["list", "show", "check", "compile"])
def test_help_shows_an_example(action, capsys):
    with pytest.raises(SystemExit) as info:
        main(["board", action, "--help"])
    assert info.value.code == 0
    assert "learnboard board " + action in capsys.readouterr().out
