"""SPI and I2C reads of the VM's ``machine`` reach the world's parts: an SPI ADC read of
the nodes through the firmware HAL in the real VM agrees with the physics, and the
current monitor answers over I2C."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learnboard.emulator.vm import compiled_vmlib
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer

from learnboard.boards import compile_board, load_board
from tests.mpvm import run_vm

BOARD = Path(__file__).parent / "boards" / "spi-parts.toml"
pytestmark = pytest.mark.vm


def test_spi_adc_and_current_monitor_in_the_vm(tmp_path, monkeypatch):
    board = load_board(BOARD)
    world = World(board, seed=3)
    body = compile_board(board).body
    (tmp_path / "body.json").write_text(json.dumps(body))
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = f"""
import json, machine, time
from lbfw.hal import Clock, Hal
body = json.load(open({str(tmp_path / 'body.json')!r}))
h = Hal(body, machine, Clock())
for p, code in zip(body["ins"], (3000, 1500)):
    for line in p["d"]:
        h.drive(h.vline(line), code)
h.settle()
out = [[0] * {board.n_nodes} for _ in range(2)]
for net in range(2):
    h.read_nodes(net, out[net])
i2c = machine.I2C(0)
buf = bytearray(2)
i2c.readfrom_into({board.current_sense[0].address}, buf)
print(json.dumps([out, list(buf), {board.current_sense[0].address} in i2c.scan()]))
"""
    with WorldServer(world, sock) as server:
        proc = run_vm(src, path=[compiled_vmlib()])
        assert server.wait_idle()
    out, sense, scanned = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    vpc = body["adc"]["vref"] / 4095 / body["mux"][0]["g"]
    for net in range(2):
        true = world.true_state(net).node_voltages
        assert np.allclose(np.array(out[net]) * vpc, true, atol=4 * vpc), (net, out[net], true)
    assert world.true_state(0).node_voltages[board.node_index("x1")] > 0.3
    assert scanned and len(sense) == 2
