"""The message catalogue, host side: every command's arguments and result, telemetry
fields, events, error codes and fault flags, with units.

The firmware keeps the names and codes in ``lbfw/msgs.py``; ``docs/protocol.md`` is the
reference text. Tests check the three agree.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import NamedTuple


class Field(NamedTuple):
    """One field of a message: msgpack type, unit ("" when dimensionless) and meaning."""

    name: str
    type: str
    unit: str
    doc: str
    optional: bool = False


class Command(NamedTuple):
    """A request the host can send and what it answers."""

    name: str
    doc: str
    args: tuple[Field, ...]
    result: tuple[Field, ...]


class ErrorCode(IntEnum):
    """Codes of ERR replies (same numbers as ``lbfw.consts.E_*``)."""

    BAD_REQUEST = 1
    UNKNOWN_COMMAND = 2
    BAD_ARGS = 3
    OUT_OF_RANGE = 4
    LIMIT = 5
    BUSY = 6
    TOO_BIG = 7
    HARDWARE = 8
    NOT_READY = 9
    INTERNAL = 10
    UNSUPPORTED = 11


class Fault(IntFlag):
    """Bits of the telemetry/status ``flt`` field (same as ``lbfw.consts.F_*``)."""

    LIMIT = 1
    PARKED = 2
    HOST_SILENT = 4
    WATCHDOG = 8
    ADC_SATURATED = 16
    END_STOP = 32
    SELF_TEST = 64
    TX_DROPPED = 128
    RX_BAD = 256


F = Field
EDGE_STATE = "digipot taps (int) or gate volts (float), per edge"

PARAMETERS: tuple[Field, ...] = (
    F("alpha", "float", "", "nudge amplitude: clamped output = free + alpha * (target - free)"),
    F("eta", "float", "edge units / V^2", "learning rate of the local rule"),
    F("lam", "float", "", "power weight lambda in [0, 1] (0 = plain coupled learning)"),
    F("oversample", "int", "readings", "ADC readings averaged per node measurement"),
    F("settle_us", "int", "us", "wait after driving inputs or clamps before measuring"),
    F("pulse_us", "int", "us", "gate-charge pulse width per unit update (transistor edges)"),
    F("mode", "str", "", '"cl" (coupled learning), "gen1" (digipot sign rule) or "desync"'),
    F("p_update", "float", "", "probability that an edge updates in a step (desync mode)"),
    F("seed", "int", "", "seed of the on-board random generator (shuffle, desync)"),
    F("order", "str", "", '"seq" (examples in order) or "shuffle"'),
    F("tlm_every", "int", "steps", "steps between telemetry frames; 0 = none"),
    F("tlm_nodes", "int", "frames", "add node voltages to every n-th telemetry frame; 0 = never"),
    F("tlm_edges", "int", "frames", "add edge states to every n-th telemetry frame; 0 = never"),
    F("host_timeout_ms", "int", "ms", "host silence after which the board parks; 0 = never"),
    F("batch", "int", "examples", "examples per learning step (updates summed over them); "
      "0 = all stored examples"),
)

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "hello",
            "Who is there: protocol, firmware, board and limits. Built into the server.",
            (),
            (
                F("proto", "int", "", "protocol version (1)"),
                F("impl", "str", "", 'sys.implementation.name ("micropython", "cpython")'),
                F("mpy", "int|nil", "", "sys.implementation._mpy: bits 0-7 .mpy version, "
                  "8-9 sub-version, 10+ native architecture; nil under CPython"),
                F("max_frame", "int", "bytes", "largest encoded frame the board accepts"),
                F("max_body", "int", "bytes", "largest msgpack body"),
                F("fw", "str", "", "firmware version"),
                F("board", "str", "", "board id from the board description"),
                F("desc_hash", "str", "", "hex SHA-256 of the board description on flash"),
                F("caps", "array of str", "", "capabilities, e.g. train, infer, power_sense, wdt"),
                F("limits", "map", "", "max_examples, n_edges, n_nodes (counts), vn (V: node-voltage "
                  "limit), ie (A: edge-current limit)"),
                F("flt", "int", "", "fault flags this boot started with: F_WATCHDOG (8) after a "
                  "watchdog reset"),
            ),
        ),
        Command(
            "stats",
            "Link-health counters of the board. Built into the server.",
            (),
            (
                F("rx_ok", "int", "frames", "good frames received"),
                F("bad_crc", "int", "frames", "dropped: CRC mismatch"),
                F("bad_cobs", "int", "frames", "dropped: malformed COBS"),
                F("short", "int", "frames", "dropped: shorter than header + 1 + CRC"),
                F("oversize", "int", "frames", "dropped: longer than max_frame"),
                F("bad_version", "int", "frames", "dropped: other protocol version"),
                F("bad_type", "int", "frames", "dropped: type the board does not accept"),
                F("bad_body", "int", "frames", "dropped: undecodable msgpack"),
                F("internal", "int", "frames", "dropped: firmware error while handling"),
                F("bad", "int", "frames", "sum of all dropped frames"),
                F("requests", "int", "", "requests executed"),
                F("retries", "int", "", "retried requests answered from the reply cache"),
                F("errors", "int", "", "ERR replies sent"),
                F("tx_frames", "int", "frames", "frames sent"),
                F("tx_dropped", "int", "frames", "frames not sent (too big, port error)"),
            ),
        ),
        Command(
            "status",
            "What the board is doing.",
            (),
            (
                F("state", "str", "", '"idle", "training" or "parked"'),
                F("step", "int", "steps", "steps done in the current or last training run"),
                F("target", "int", "steps", "steps requested; 0 = until stop"),
                F("examples", "int", "", "examples stored"),
                F("flt", "int", "", "fault flags (Fault)"),
                F("uptime_ms", "int", "ms", "time since boot"),
            ),
        ),
        Command(
            "get_params",
            "Read learning parameters (see PARAMETERS).",
            (F("names", "array of str", "", "parameters to read; all when absent", True),),
            (F("<name>", "any", "see PARAMETERS", "one entry per parameter"),),
        ),
        Command(
            "set_params",
            "Change parameters, also between training steps. All or nothing: on an error "
            "no parameter changes.",
            (F("<name>", "any", "see PARAMETERS", "new value per parameter"),),
            (F("<name>", "any", "see PARAMETERS", "the value applied (after quantisation)"),),
        ),
        Command(
            "upload_examples",
            "Store training examples on the board, in chunks that fit a frame.",
            (
                F("start", "int", "", "index of the first example in this chunk"),
                F("x", "array of array of float", "V", "input voltages, one array per example"),
                F("y", "array of array of float", "V", "target output voltages per example"),
                F("clear", "bool", "", "drop all stored examples first", True),
            ),
            (F("count", "int", "", "examples stored in total"),),
        ),
        Command(
            "train",
            "Start training and reply at once; progress comes as telemetry, the end as a "
            '"done" event. E_BUSY while already training.',
            (
                F("steps", "int", "steps", "steps to run; 0 = until stop"),
                F("every", "int", "steps", "telemetry interval (sets tlm_every)", True),
            ),
            (
                F("step", "int", "steps", "step counter at the start"),
                F("target", "int", "steps", "step counter at which training will stop"),
            ),
        ),
        Command("stop", "Stop training after the current step.", (),
                (F("step", "int", "steps", "steps done"),)),
        Command(
            "infer",
            "Apply inputs and read outputs and power without learning.",
            (F("x", "array of float", "V", "input voltages"),),
            (
                F("y", "array of float", "V", "output node voltages"),
                F("pwr", "float", "W", "power dissipated in the network"),
                F("pwr_m", "float", "W", "measured power from the board's current monitor "
                  "(boards with power_sense only)", True),
            ),
        ),
        Command(
            "read_edges",
            "Read edge states (checkpoint).",
            (
                F("start", "int", "", "first edge index", True),
                F("count", "int", "", "number of edges; all from start when absent", True),
            ),
            (
                F("start", "int", "", "first edge index"),
                F("k", "array", "", EDGE_STATE),
            ),
        ),
        Command(
            "write_edges",
            "Set edge states (restore). Checked against limits first; on an error nothing moves.",
            (
                F("start", "int", "", "first edge index"),
                F("k", "array", "", EDGE_STATE),
                F("clamp", "bool", "", "true: a value outside an edge's safe range is set to the "
                  "nearest safe value instead of refused (default false)", True),
            ),
            (F("count", "int", "", "edges written"),
             F("clamped", "array", "", "with clamp: the edges set to their nearest safe value", True)),
        ),
        Command(
            "measure",
            "Measure node voltages in the current state.",
            (F("nodes", "array of int", "", "node indices; all when absent", True),),
            (
                F("nodes", "array of int", "", "node indices measured"),
                F("v", "array of float", "V", "node voltages"),
            ),
        ),
        Command(
            "self_test",
            "Nudge every edge up and down and check it moves in the commanded direction.",
            (),
            (
                F("ok", "bool", "", "every edge moved as commanded"),
                F("failed", "array of int", "", "indices of edges that did not"),
                F("unchecked", "array of int", "", "digipot edges held by drivers at both "
                  "ends on every network (a move cannot be seen)"),
            ),
        ),
        Command("park", "Inputs to 0 V, learning stopped.", (),
                (F("parked", "bool", "", "true"),)),
        Command(
            "repl",
            "Reply, park, then reset into the maintenance boot: the MicroPython REPL with "
            "no watchdog running (so mpremote can flash or use the board for as long as "
            "needed). The reset drops a USB port; the board comes back on the same or a "
            "new one.",
            (),
            (),
        ),
        Command("reset", "Reply, then reset the board.", (), ()),
    )
}

TELEMETRY: tuple[Field, ...] = (
    F("t", "int", "ms", "board clock (wraps at 2^30)"),
    F("step", "int", "steps", "steps done in this training run"),
    F("err", "float", "V^2", "mean squared output error over the last n examples (free state)"),
    F("pwr", "float", "W", "mean power dissipated in the network over the last n examples"),
    F("lam", "float", "", "power weight lambda in use"),
    F("n", "int", "examples", "examples the averages cover"),
    F("dt", "int", "us", "mean time per step since the previous telemetry frame"),
    F("dtmax", "int", "us", "longest step since the previous telemetry frame"),
    F("flt", "int", "", "fault flags (Fault)"),
    F("bad", "int", "frames", "bad frames received since boot"),
    F("v", "array of float", "V", "node voltages (every tlm_nodes-th frame)", True),
    F("k", "array", "", EDGE_STATE + " (every tlm_edges-th frame)", True),
    F("pwr_m", "float", "W", "measured power from the board's current monitor at the frame "
      "(boards with power_sense only)", True),
)

EVENTS: dict[str, tuple[Field, ...]] = {
    "boot": (F("fw", "str", "", "firmware version"),),
    "done": (F("step", "int", "steps", "steps done"),),
    "parked": (F("reason", "str", "", '"request", "host_silent" or "limit"'),),
    "fault": (F("flt", "int", "", "fault flags"), F("msg", "str", "", "what happened")),
    "log": (F("msg", "str", "", "free text"),),
}
