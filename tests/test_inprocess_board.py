"""The fast in-process emulated board and ``open_board``: the unchanged firmware under
CPython on the emulated world, reached through the host link."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.cli.connection import LinkedInProcessBoard, open_board
from learnboard.emulator.world import Faults
from learnboard.firmware.lbfw import msgs
from learnboard.host.link import BoardError

from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError, LearnboardError, LinkError


@pytest.fixture(scope="module")
def gen2():
    with LinkedInProcessBoard("gen2-clln", seed=3) as board:
        yield board


def test_hello_names_the_description_the_firmware_runs(gen2):
    hello = gen2.link.hello()
    assert hello["desc_hash"] == compile_board(load_board("gen2-clln")).sha256
    assert hello["board"] == "gen2-clln"
    assert hello["impl"] == "cpython"  # the fast mode, not the VM
    assert hello["limits"]["n_edges"] == 32


def test_measured_nodes_follow_the_true_physics(gen2):
    link = gen2.link
    link.call("upload_examples", x=[[0.3, 0.1]], y=[[0.2]], clear=True)
    res = link.call("infer", x=[0.3, 0.1])
    true = gen2.true_state(0)
    # the output node the firmware reports is the physics' within the ADC's few codes
    out_node = load_board("gen2-clln").outputs[0].a
    assert res["y"][0] == pytest.approx(true.node_voltages[out_node], abs=0.01)
    assert true.power > 0 and np.all(np.abs(true.node_voltages) <= 0.45 + 1e-6)


def test_a_reset_reboots_the_firmware_and_loses_volatile_state(gen2):
    link = gen2.link
    assert link.call("upload_examples", x=[[0.2, 0.2]], y=[[0.1]], clear=True) == {"count": 1}
    while link.next_event(timeout=0) is not None:  # drop older events
        pass
    boots = gen2.boots
    gen2.reset("power-on")
    assert gen2.boots == boots + 1 and gen2.resets[-1] == "power-on"
    kind, info = link.next_event(timeout=2)
    assert kind == msgs.EV_BOOT and info["board"] == "gen2-clln"
    with pytest.raises(BoardError, match="example"):
        link.call("train", steps=1)  # the uploaded examples were in RAM


def test_stuck_edge_fault_freezes_the_edge():
    with LinkedInProcessBoard("gen2-clln", seed=1, faults=Faults(stuck_edges={(0, 5)})) as board:
        before = board.true_state(0).edge_state[5]
        k = board.link.call("read_edges")["k"]
        k[5] = min(k[5] + 1.0, 5.0)
        board.link.call("write_edges", k=k)
        assert board.true_state(0).edge_state[5] == pytest.approx(before)


def test_open_board_defaults_to_the_emulated_gen2():
    with open_board() as conn:
        assert conn.emulated and conn.board.name == "gen2-clln"
        assert conn.hello["desc_hash"] == compile_board(conn.board).sha256
        assert conn.true_state(0).power >= 0


def test_open_board_emulated_profile_by_port_name():
    with open_board("emu:gen1-digipot") as conn:
        assert conn.hello["board"] == "gen1-digipot" and conn.label == "emulated gen1-digipot"
    with pytest.raises(InputError, match="not both"):
        open_board("emu:gen1-digipot", board="gen2-clln")


def test_open_board_on_a_missing_port_says_what_to_check(tmp_path):
    with pytest.raises(LinkError, match="cannot open"):
        open_board(str(tmp_path / "ttyACM9"))


def test_a_description_mismatch_says_to_flash():
    from learnboard.host.connect import _check_description

    hello = {"board": "gen2-clln", "desc_hash": compile_board(load_board("gen2-clln")).sha256}
    _check_description(hello, load_board("gen2-clln"), "/dev/ttyACM0")
    with pytest.raises(LearnboardError, match="learnboard flash --port /dev/ttyACM0 --board gen1-digipot"):
        _check_description(hello, load_board("gen1-digipot"), "/dev/ttyACM0")
