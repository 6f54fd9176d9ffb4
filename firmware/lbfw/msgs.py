"""The message catalogue, firmware side: the protocol version, command and event names.

The host keeps the same catalogue with field descriptions and units in
``learnboard.host.messages``; ``docs/protocol.md`` is the reference and a test checks
that the three agree. Handlers for the commands are registered by the application.
Error codes and fault flags are in ``lbfw.consts``.
"""

PROTOCOL = 5  # frame.VERSION; hello's and the boot event's proto

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
SET_MODEL = "set_model"

COMMANDS = (HELLO, STATS, STATUS, GET_PARAMS, SET_PARAMS, UPLOAD_EXAMPLES, TRAIN, STOP,
            INFER, READ_EDGES, WRITE_EDGES, MEASURE, SELF_TEST, PARK, REPL, RESET, SET_MODEL)

# Events (EVT frames, unsolicited).
EV_BOOT = "boot"
EV_DONE = "done"
EV_PARKED = "parked"
EV_FAULT = "fault"
EV_LOG = "log"

EVENTS = (EV_BOOT, EV_DONE, EV_PARKED, EV_FAULT, EV_LOG)

# Telemetry keys in wire order: fixed keys first, then the optional ones.
TELEMETRY_KEYS = ("t", "step", "err", "pwr", "lam", "n", "dt", "dtmax", "flt", "bad")
TELEMETRY_OPTIONAL = ("v", "k", "pwr_m", "pwr_c")
