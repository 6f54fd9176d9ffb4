"""``learnboard stop``: the emergency stop — park a board at once, whoever holds its port."""

from __future__ import annotations

import argparse

HELP = "park a board at once (inputs to 0 V, learning stopped), even one another program holds"
DESCRIPTION = """\
The emergency stop: park a board now (every input and clamp to 0 V, training stopped),
whatever it is doing. It is never refused. When another learnboard command holds the port
(a `learnboard train` session), that process is asked to park the board at once; the
session then ends with "stopped by `learnboard stop`" and its run can be resumed. An
owner that does not answer within a second is passed over: the port is opened here and
the board parked directly. A port nobody holds is parked directly; a firmware other
than this host's is then reported as an error that says to run `learnboard flash`.

Give the board's --port, or --all for every learnboard board found (the ports held by
learnboard sessions, running `learnboard emulate` boards, and every serial port whose
firmware answers hello)."""
EPILOG = """\
examples:
  learnboard stop --port /dev/ttyACM0
  learnboard stop --all
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", metavar="P", default=None, help="serial port of the board to park")
    where.add_argument("--all", action="store_true", help="park every learnboard board found")


def run(args: argparse.Namespace) -> int:
    from learnboard.errors import InputError, LearnboardError

    if args.port is None and not args.all:
        raise InputError("say which board to park: --port P (`learnboard ports` lists them), or --all "
                         "for every learnboard board found", field="--port")
    if args.port is not None:
        if args.port.startswith("emu:"):
            raise InputError("an in-process emulated board (emu:NAME) lives only inside the command that "
                             "started it; Ctrl-C that command, or give the port of a board", field="--port")
        return 0 if _stop(args.port, check=True) else 1
    ports = _learnboard_ports()
    if not ports:
        print("no learnboard board found (`learnboard ports` lists the serial ports)")
        return 0
    failed = 0
    for port in ports:
        try:
            if not _stop(port, check=False):
                failed += 1
        except LearnboardError as exc:
            failed += 1
            print(f"learnboard stop: error: {exc}")
    return 1 if failed else 0


def _learnboard_ports() -> list[str]:
    """Ports held by a learnboard command, and ports whose firmware answers hello (the
    probe passes over held ones)."""
    from learnboard.host.ownership import held_ports, holder
    from learnboard.host.serial_ports import list_ports

    found = [p.device for p in list_ports(probe=True) if p.hello is not None or holder(p.device) is not None]
    return found + [e.port for e in held_ports() if e.port not in found]  # e.g. socket:// URLs


def _stop(port: str, *, check: bool) -> bool:
    """Park the board on ``port``: through its owner, else directly. True when parked."""
    from learnboard.host.ownership import ask_owner_to_stop

    held, answered = ask_owner_to_stop(port)
    if held is not None:
        who = f"`{held.command}` (pid {held.pid}" + (f", run {held.run_dir})" if held.run_dir else ")")
        if answered:
            print(f"{port}: parked by {who}, which held the port")
            return True
        print(f"{port}: {who} did not park the board within a second; parking it directly", flush=True)
    return _park_directly(port, check=check)


def _park_directly(port: str, *, check: bool) -> bool:
    from learnboard.host.flashing import check_hello
    from learnboard.host.link import Link

    from learnboard.errors import LinkError

    # No hello first: parking must not wait for anything it does not need. No lock
    # either: an emergency stop takes the port over from an owner that does not answer.
    with Link.open(port, timeout=0.5, retries=3) as link:
        try:
            reply = link.call("park")
        except LinkError as exc:
            raise LinkError(f"{port}: the board did not confirm parking ({exc}); if it runs "
                            "no learnboard firmware, unplug it or press its reset button") from exc
        hello = link.hello() if check else None
    parked = bool(isinstance(reply, dict) and reply.get("parked"))
    print(f"{port}: parked" if parked else f"{port}: park answered {reply!r}")
    if hello is not None:
        check_hello(hello, port, port=port)
    return parked
