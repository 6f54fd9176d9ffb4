"""Shared helpers for the board-description tests: profile data as dicts, a tiny single board."""

from __future__ import annotations

import copy
import sys

from learnboard.boards import profile_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def profile_data(name: str) -> dict:
    """The parsed TOML of a shipped profile (a fresh deep copy each call)."""
    return copy.deepcopy(tomllib.loads(profile_path(name).read_text()))


# A single-network board exercising the paths the shipped profiles do not: resistor and
# SPI digipot edges, an external SPI ADC, an I2C DAC, output switches, a differential output.
SINGLE_BOARD = """
format = 1
[board]
name = "bench-single"
microcontroller = "RP2040"
networks = "single"
[nodes]
names = ["g", "in", "m", "o1", "o2"]
ground = "g"
[rails]
analog = 5.0
[parts.mcp4231]
kind = "digipot"
n_taps = 129
r_min = 75.0
r_max = 10075.0
taper = "linear"
r_wiper = 75.0
tolerance = 0.2
i_max = 0.0025
interface = "spi"
[spi.s1]
id = 1
sck = 10
mosi = 11
miso = 12
[i2c.i0]
id = 0
sda = 0
scl = 1
[dacs.d]
part = "MCP4728"
interface = "i2c"
bus = "i0"
address = 96
channels = 4
bits = 12
vref = 2.048
gain = 0.5
[adc]
type = "spi"
part = "MCP3208"
bus = "s1"
cs = 13
channels = 8
bits = 12
vref = 2.5
[muxes.all]
select = [2, 3]
adc_channel = 0
gain = 2.0
nodes = ["in", "m", "o1", "o2"]
[[edges]]
nodes = ["in", "m"]
kind = "resistor"
resistance = 1000.0
[[edges]]
nodes = ["m", "g"]
kind = "digipot"
part = "mcp4231"
bus = "s1"
cs = 14
[[edges]]
nodes = ["m", "o1"]
kind = "digipot"
part = "mcp4231"
bus = "s1"
cs = 15
[[edges]]
nodes = ["o1", "o2"]
kind = "digipot"
part = "mcp4231"
bus = "s1"
cs = 15
wiper = 1
[[edges]]
nodes = ["o2", "g"]
kind = "resistor"
resistance = 2200.0
[[inputs]]
name = "x"
node = "in"
drive = "d.0"
[[outputs]]
name = "y"
nodes = ["o1", "o2"]
clamp = "d.1"
clamp_b = "d.2"
switch = 20
switch_b = 21
[limits]
max_node_volts = 1.0
max_edge_amps = 0.0025
tap_range = [6, 128]
reason = "MCP4231 wiper rating: taps below 6 could pass more than 2.5 mA at 1 V"
[learning]
rule = "taps"
alpha = 0.1
eta = 0.5
task = "regression"
"""


def single_data() -> dict:
    return tomllib.loads(SINGLE_BOARD)
