"""The firmware's shared numbers: edge kinds, fault flags and error codes.

One table for every module (``rule``, ``safety``, ``hal``, ``learn``, ``gates``,
``selftest``, ``budget``, ``app``, ``server``). The host mirrors the fault flags and
error codes in ``learnboard.host.messages`` (``Fault``, ``ErrorCode``); a test checks
that both agree. Edge kinds never travel on the wire: ``board.json`` names an edge's
kind by letter (``"r"``, ``"d"``, ``"t"``) and its driver, and the firmware derives the
number below when it wires the board.

MicroPython inlines a ``const()`` only inside the module that defines it; another module
that imports a name here pays a global lookup per use. Hot loops therefore bind the
values they need to locals (``learn``, ``hal``, ``safety``) or keep module-level
``const()`` copies that are checked against this table at import (``rule``,
``rule_viper``).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Edge kinds (``safety.Limits.kind``, ``rule.Rule.kind``, ``hal.Hal.ekind``). The actuator
# coordinate of each is a tap (POT), a gate read-back code (PULSE) or a gate DAC code
# (DAC); +1 always means "up".
K_FIXED = const(0)  # a resistor (or any edge without an actuator): never moved
K_POT = const(1)  # digipot (X9C up/down or SPI wiper): +1 tap = more resistance
K_PULSE = const(2)  # pulse-charged gate: charge/discharge pulses, read back by the ADC
K_DAC = const(3)  # DAC-set gate: +1 code = higher gate = more conductance

# Fault flags (telemetry "flt", status "flt").
F_LIMIT = const(1)  # a limit refused an actuation or a measured drop exceeded its bound
F_PARKED = const(2)  # the board is parked (inputs at 0 V, learning stopped)
F_HOST_SILENT = const(4)  # parked because the host was silent past its timeout
F_WATCHDOG = const(8)  # the last reset was by the watchdog
F_ADC_SATURATED = const(16)  # an ADC reading hit the end of its range
F_END_STOP = const(32)  # a digipot edge sits at an end stop
F_SELF_TEST = const(64)  # the last self-test failed
F_TX_DROPPED = const(128)  # a telemetry frame did not fit and was dropped
F_RX_BAD = const(256)  # bad frames were received since the previous telemetry frame

# Error codes carried by ERR replies ``[id, code, message, detail]``; ``detail`` names the
# request argument (``field``) and the edge (``edge``) at fault when there is one.
E_BAD_REQUEST = const(1)  # body is not [id, command, args]
E_UNKNOWN_COMMAND = const(2)  # no handler for this command on this board
E_BAD_ARGS = const(3)  # an argument is missing or has the wrong type
E_OUT_OF_RANGE = const(4)  # a value lies outside its allowed range; nothing changed
E_LIMIT = const(5)  # a safety limit would be exceeded; nothing moved
E_BUSY = const(6)  # not allowed while training; send stop first
E_TOO_BIG = const(7)  # the reply would exceed the frame size; ask for less
E_HARDWARE = const(8)  # a peripheral did not respond or read back wrong
E_NOT_READY = const(9)  # missing state (no board description, no examples)
E_INTERNAL = const(10)  # an unexpected exception in the handler (a firmware bug)
E_UNSUPPORTED = const(11)  # this board lacks the capability
