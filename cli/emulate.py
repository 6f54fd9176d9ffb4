"""``learnboard emulate``: run a virtual learning board on a pseudo-terminal."""

from __future__ import annotations

import argparse

HELP = "run a virtual learning board on a pseudo-terminal"
DESCRIPTION = """\
Run a virtual learning board: the real MicroPython VM behind a raw pseudo-terminal that
host tools open exactly like /dev/ttyACM0. The first line of standard output is the
port's path; the board then runs until interrupted (Ctrl-C or SIGTERM).

The VM's `machine` module drives the emulated parts of the board description (--board,
default gen2-clln): multiplexers and ADC, DACs or PWM + RC, digipots or gate
capacitors, and the twin networks' physics, on a virtual clock.

The board behaves like a MicroPython board on USB: friendly REPL, raw REPL and raw-paste,
so mpremote works unmodified. A soft reset from the raw REPL runs boot.py only; a soft
reset from the friendly REPL, or a hard reset (mpremote reset), runs boot.py then
main.py from the flash folder, which persists between runs.

Like a board on USB, every reset but a soft one (mpremote reset, machine.reset(), the
watchdog, a brown-out) drops the serial port: the pty closes and a new one opens, under
the same path if no program held the old one open, else under a new path (as a Pico
comes back as ttyACM0 or ttyACM1). Each new path is printed on its own line of standard
output; learnboard's host commands follow the board to it by themselves."""
EPILOG = """\
examples:
  learnboard emulate --board gen2-clln
      /dev/pts/5                              <- the port
  learnboard flash --port /dev/pts/5 --board gen2-clln   (firmware + board.json, reset)
  mpremote connect /dev/pts/5 fs cp main.py :main.py + reset
  learnboard emulate --flash ./myflash --seed 1 --drop-rate 0.001   (a lossy line)
  learnboard emulate --seed 1 --insert-rate 200   (200 random bytes per second on the line)
  learnboard emulate --micropython "$(scripts/build-micropython32)"   (a 32-bit VM: small
      ints overflow at 2^30 as on the RP2040)
  learnboard emulate --board gen1-digipot --stuck-edge 3 --dead-adc 2 --brownout-at 30
  learnboard emulate --board gen2-clln --calibration ~/.local/share/learnboard/calibrations/gen2-clln-bc2dba862e441bfe.json
      (a twin of the board that calibration measured)
"""

DEFAULT_BOARD = "gen2-clln"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board",
        metavar="NAME|FILE",
        default=DEFAULT_BOARD,
        help=f"board description: a profile name or a .toml file (default: {DEFAULT_BOARD})",
    )
    parser.add_argument(
        "--flash",
        metavar="DIR",
        default=None,
        help="the board's flash folder (default: $XDG_DATA_HOME/learnboard/flash/<board>)",
    )
    parser.add_argument(
        "--vm",
        choices=("micropython", "cpython"),
        default="micropython",
        help="the interpreter running the firmware (default: micropython, the real VM with a REPL; "
             "cpython: the firmware in this process, faster, no REPL and no flash folder, so no mpremote)",
    )
    parser.add_argument(
        "--micropython",
        metavar="PATH",
        default=None,
        help="the MicroPython VM binary for --vm micropython, any unix port build, e.g. the 32-bit "
             "one scripts/build-micropython32 prints (default: $LEARNBOARD_MICROPYTHON, else the "
             "installed `micropython`)",
    )
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the emulated randomness: device spreads, ADC noise (default 0) and serial faults")
    parser.add_argument("--cost-model", choices=("rp2040", "zero"), default="rp2040",
                        help="what the firmware's own Python costs on the virtual clock: rp2040 "
                             "(default: ~3 us per machine/time call and 5 us per main-loop pass, "
                             "as measured on a Pico at 125 MHz; docs/emulator.md) or zero")
    parser.add_argument("--calibration", metavar="FILE", default=None,
                        help="a calibration of a real board (`learnboard calibrate`, or the board's "
                             "/calibration.json): the emulated board becomes its twin — that board's "
                             "measured ADC gain and offset, digipot scales or transistor thresholds "
                             "and gains")
    faults = parser.add_argument_group("serial faults (both directions)")
    faults.add_argument("--drop-rate", type=float, default=0.0, metavar="P", help="probability a byte is lost")
    faults.add_argument("--corrupt-rate", type=float, default=0.0, metavar="P", help="probability a byte is changed")
    faults.add_argument("--dup-rate", type=float, default=0.0, metavar="P", help="probability a byte arrives twice")
    faults.add_argument("--insert-rate", type=float, default=0.0, metavar="B/S",
                        help="random bytes (0x00 and control characters included) inserted per second, "
                             "at random moments: a noisy cable or a second program on the port")
    world = parser.add_argument_group(
        "board faults",
        "Brown-outs fall on the virtual clock (seconds since the board powered up; a learning "
        "step advances it by a fixed board-dependent time, see docs/emulator.md): the VM dies, "
        "the parts power-cycle, the firmware boots again.")
    world.add_argument("--brownout-at", type=float, action="append", default=[], metavar="T",
                       help="a brown-out at virtual second T (repeatable)")
    world.add_argument("--brownout-rate", type=float, default=0.0, metavar="R",
                       help="random brown-outs, R per virtual second on average (seeded)")
    world.add_argument("--stuck-edge", action="append", default=[], metavar="[NET:]EDGE",
                       help="an edge frozen at its state, its actuations lost (0-based; NET default 0; "
                            "repeatable)")
    world.add_argument("--dead-adc", type=int, action="append", default=[], metavar="CH",
                       help="ADC input CH reads 0 V (repeatable)")
    world.add_argument("--noise-scale", type=float, default=1.0, metavar="X",
                       help="ADC noise times X (default 1: the part's own)")
    world.add_argument("--leak-scale", type=float, default=1.0, metavar="X",
                       help="gate-capacitor leakage times X (default 1)")


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading
    from pathlib import Path

    from learnboard.emulator.brownout import BrownOuts, make_faults

    from learnboard.boards import load_board
    from learnboard.errors import InputError, LearnboardError

    if args.board and (args.board.endswith(".toml") or "/" in args.board) and not Path(args.board).is_file():
        raise InputError("board description file not found; give a profile name or an existing .toml file", source=args.board, field="--board")
    desc = load_board(args.board or DEFAULT_BOARD)
    faults = make_faults(desc, stuck_edges=args.stuck_edge, dead_adc=args.dead_adc,
                         noise_scale=args.noise_scale, leak_scale=args.leak_scale)
    brownouts = BrownOuts(args.brownout_at, args.brownout_rate, seed=args.seed)
    world_factory = None
    if args.calibration:
        from learnboard.emulator.twin import twin_factory
        from learnboard.host.calibration import load_calibration

        world_factory = twin_factory(load_calibration(args.calibration, desc),
                                     seed=0 if args.seed is None else args.seed, faults=faults)
    ports: list[str] = []
    truth: list = []  # the truth probe's server, once the board runs

    def on_port_change(port: str) -> None:
        # a hard or watchdog reset dropped the port, as USB does: the new path, on
        # standard output like the first, and in the list hosts follow a board by
        from learnboard.emulated_ports import announce_emulated

        announce_emulated(port, desc.name, previous=ports,
                          truth=truth[0].path if truth else None)
        ports.append(port)
        print(port, flush=True)


    if args.vm == "cpython":
        if args.flash:
            raise InputError("--vm cpython runs the installed firmware on the given description; it has no "
                             "flash folder (drop --flash, or use --vm micropython)", field="--flash")
        if args.micropython:
            raise InputError("--micropython names the VM of --vm micropython; --vm cpython runs no VM "
                             "(drop one of them)", field="--micropython")
        board = _cpython_board(args, desc, faults, brownouts, world_factory)
        where = "firmware under CPython (no REPL: learnboard protocol only)"
    else:
        from learnboard.emulator.vm_board import VMBoard, board_key, default_flash_dir

        flash = Path(args.flash) if args.flash else default_flash_dir(board_key(args.board))
        board = VMBoard(
            flash,
            board=desc,
            seed=args.seed,
            faults=faults,
            brownouts=brownouts,
            drop_rate=args.drop_rate,
            corrupt_rate=args.corrupt_rate,
            dup_rate=args.dup_rate,
            insert_rate=args.insert_rate,
            world_factory=world_factory,
            executable=args.micropython,
            cost_model=args.cost_model,
            on_port_change=on_port_change,
        )
        where = f"VM {board.vm.executable}, flash folder {board.flash_dir}"
    if args.calibration:
        where += f"; twin of the board calibrated in {args.calibration}"
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    announced = None
    try:
        port = board.start()
        from learnboard.emulator.truth_server import TruthServer

        from learnboard.emulated_ports import announce_emulated, truth_socket_path

        # the board's physics for a host in another process (`train` records true power)
        truth.append(TruthServer(board, truth_socket_path()))
        announced = announce_emulated(port, desc.name, truth=truth[0].path)  # `learnboard ports` lists it
        ports.append(port)
        print(port, flush=True)
        print(f"learnboard emulate: {desc.name} board, {where}; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            if not board.running:
                raise LearnboardError(f"the virtual serial port stopped: {board.error!r}")
    finally:
        if announced is not None:
            announced.unlink(missing_ok=True)
        for server in truth:
            server.close()
        board.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    if args.vm == "cpython":
        print(f"learnboard emulate: stopped; {board.inprocess.boots} firmware boots, {board.power_cycles} brown-outs",
              file=sys.stderr)
        return 0
    c = board.counters()
    print(
        f"learnboard emulate: stopped; {c.vm_starts} VM boots, {c.soft_resets} soft and "
        f"{c.hard_resets} hard and {c.watchdog_resets} watchdog resets, {c.power_cycles} brown-outs, "
        f"{c.crashes} crashes, {c.replugs} port drops; serial to board "
        f"{c.to_board.bytes_in} B ({c.to_board.dropped} dropped, {c.to_board.corrupted} corrupted, "
        f"{c.to_board.duplicated} duplicated, {c.to_board.inserted} inserted), to host {c.to_host.bytes_in} B "
        f"({c.to_host.dropped} dropped, {c.to_host.corrupted} corrupted, {c.to_host.duplicated} duplicated, "
        f"{c.to_host.inserted} inserted)",
        file=sys.stderr,
    )
    return 0


def _cpython_board(args, desc, faults, brownouts, world_factory):
    import numpy as np
    from learnboard.emulator.cpython_board import CPythonBoard
    from learnboard.emulator.serial_faults import SerialFaults

    rates = {"drop_rate": args.drop_rate, "corrupt_rate": args.corrupt_rate, "dup_rate": args.dup_rate,
             "insert_rate": args.insert_rate}
    lines = None
    if any(rates.values()):
        seq_board, seq_host = np.random.SeedSequence(args.seed).spawn(2)
        lines = (SerialFaults(**rates, seed=seq_board), SerialFaults(**rates, seed=seq_host))
    return CPythonBoard(desc, seed=args.seed, faults=faults, brownouts=brownouts, serial_faults=lines,
                            world_factory=world_factory, cost_model=args.cost_model)
