"""The message catalogue, firmware side: command names, error codes, events, fault bits.

The host keeps the same catalogue with field descriptions and units in
``learnboard.host.messages``; ``docs/protocol.md`` is the reference and a test checks
that the three agree. Handlers for the commands are registered by the application.
"""

PROTOCOL = 2  # frame.VERSION; hello's and the boot event's proto

# Commands (request names). Built into the server: HELLO (merged with the
# application's), STATS. All others are implemented by the application.
HELLO = "hello"
STATS = "stats"
STATUS = "status"
GET_PARAMS = "get_params"
SET_PARAMS = "set_params"
UPLOAD_EXAMPLES = "upload_examples"
TRAIN = "train"
STOP = "stop"
INFER = "infer"
READ_EDGES = "read_edges"
WRITE_EDGES = "write_edges"
MEASURE = "measure"
SELF_TEST = "self_test"
PARK = "park"
REPL = "repl"
RESET = "reset"

COMMANDS = (HELLO, STATS, STATUS, GET_PARAMS, SET_PARAMS, UPLOAD_EXAMPLES, TRAIN, STOP,
            INFER, READ_EDGES, WRITE_EDGES, MEASURE, SELF_TEST, PARK, REPL, RESET)

# Error codes carried by ERR replies.
E_BAD_REQUEST = 1  # body is not [id, command, args]
E_UNKNOWN_COMMAND = 2  # no handler for this command on this board
E_BAD_ARGS = 3  # an argument is missing or has the wrong type
E_OUT_OF_RANGE = 4  # a value lies outside its allowed range; nothing changed
E_LIMIT = 5  # a safety limit would be exceeded; nothing moved
E_BUSY = 6  # not allowed while training; send stop first
E_TOO_BIG = 7  # the reply would exceed the frame size; ask for less
E_HARDWARE = 8  # a peripheral did not respond or read back wrong
E_NOT_READY = 9  # missing state (no board description, no examples)
E_INTERNAL = 10  # an unexpected exception in the handler (a firmware bug)
E_UNSUPPORTED = 11  # this board lacks the capability

ERRORS = (E_BAD_REQUEST, E_UNKNOWN_COMMAND, E_BAD_ARGS, E_OUT_OF_RANGE, E_LIMIT, E_BUSY,
          E_TOO_BIG, E_HARDWARE, E_NOT_READY, E_INTERNAL, E_UNSUPPORTED)

# Events (EVT frames, unsolicited).
EV_BOOT = "boot"
EV_DONE = "done"
EV_PARKED = "parked"
EV_FAULT = "fault"
EV_LOG = "log"

EVENTS = (EV_BOOT, EV_DONE, EV_PARKED, EV_FAULT, EV_LOG)

# Fault flags (telemetry "flt", status "flt").
F_LIMIT = 1  # a limit refused an actuation or a measured drop exceeded its bound
F_PARKED = 2  # the board is parked (inputs at 0 V, learning stopped)
F_HOST_SILENT = 4  # parked because the host was silent past its timeout
F_WATCHDOG = 8  # the last reset was by the watchdog
F_ADC_SATURATED = 16  # an ADC reading hit the end of its range
F_END_STOP = 32  # a digipot edge sits at an end stop
F_SELF_TEST = 64  # the last self-test failed
F_TX_DROPPED = 128  # a telemetry frame did not fit and was dropped
F_RX_BAD = 256  # bad frames were received since the previous telemetry frame

# Telemetry keys in wire order: fixed keys first, then the optional ones.
TELEMETRY_KEYS = ("t", "step", "err", "pwr", "lam", "n", "dt", "dtmax", "flt", "bad")
TELEMETRY_OPTIONAL = ("v", "k", "pwr_m")
