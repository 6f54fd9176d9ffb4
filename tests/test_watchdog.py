"""The watchdog as on an RP2040, the maintenance boot and the way back, on the emulated
board: the real MicroPython VM behind a pty, real mpremote, real pyserial, and the
``learnboard`` commands as subprocesses.

No test waits on wall-clock time: the watchdog runs on the emulator's virtual clock,
and each test waits for an event (a reset counter, a printed port, a log record).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from learnboard.emulator.vm_board import VMBoard

from tests.mpvm import require_vm
from tests.test_emulator_port import wait_for as _wait_for

BIN = Path(sys.executable).parent


def wait_for(predicate, what: str = "condition"):
    """An event of a VM board (a reset, a new boot): allowed 30 s on a busy machine."""
    return _wait_for(predicate, timeout=30.0, what=what)


def mpremote(port: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "mpremote"), "connect", port, *args], capture_output=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def learnboard(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, timeout=timeout)
    assert proc.returncode == 0, (f"learnboard {args}: {proc.stderr.decode(errors='replace')}"
                                  f"\nstdout: {proc.stdout.decode(errors='replace')}")
    return proc


def now(lines: list[str]) -> str:
    """The emulated board's port now: the emulator's stdout can lag behind a reset the
    command that caused it has already followed (``current_port``, as every learnboard
    command does)."""
    from learnboard.host.serial_ports import current_port

    return current_port(lines[-1])


def _board(flash: Path, main: str, **kw) -> VMBoard:
    flash.mkdir(parents=True, exist_ok=True)
    (flash / "main.py").write_text(main)
    return VMBoard(flash, board="gen2-clln", seed=1, **kw)


@pytest.mark.vm
def test_the_watchdog_runs_on_the_virtual_clock_resets_the_board_and_reset_cause_says_so(tmp_path):
    require_vm()
    flash = tmp_path / "flash"
    # fed three times a virtual second apart, then starved for 3 s: a reset 2 s later
    main = ("import machine, time\n"
            "f = open('causes', 'a'); f.write('%d ' % machine.reset_cause()); f.close()\n"
            "w = machine.WDT(timeout=2000)\n"
            "for i in range(3):\n"
            "    time.sleep_ms(1000); w.feed()\n"
            "time.sleep_ms(3000)\n"
            "open('not_reached', 'w').close()\n")
    with _board(flash, main) as vb:
        first = vb.port
        wait_for(lambda: vb.counters().watchdog_resets >= 2, what="two watchdog resets")
        wait_for(lambda: len((flash / "causes").read_text().split()) >= 3, what="the third boot")
        c = vb.counters()
        assert c.hard_resets == 0 and c.power_cycles == 0 and c.replugs >= 2
        # the chip's time of each reset: 3 s fed + 2 s timeout, on the virtual clock
        assert vb.world.watchdog.expiries >= 2 and vb.world.clock.now_us >= 10_000_000
    causes = (flash / "causes").read_text().split()
    assert causes[:3] == ["1", "3", "3"]  # PWRON_RESET, then WDT_RESET after each expiry
    assert not (flash / "not_reached").exists()
    # the USB port dropped with each reset; the board announced where it came back
    assert vb.ports[0] == first and len(vb.ports) >= 3


@pytest.mark.vm
def test_rp2_limits_and_a_watchdog_that_survives_a_soft_reset_but_not_a_hard_one(tmp_path):
    require_vm()
    flash = tmp_path / "flash"
    (flash).mkdir()
    (flash / "arm").write_text("")
    main = ("import machine, os\n"
            "try:\n"
            "    os.remove('arm')\n"
            "    machine.WDT(timeout=8000)\n"
            "except OSError:\n"
            "    pass\n")
    with _board(flash, main) as vb:
        wait_for(lambda: vb.repl_state == "friendly", what="the REPL after main.py")
        # mpremote's raw REPL starts with a soft reset: the running watchdog does not stop,
        # and a 9 s (virtual) sleep starves it
        out = mpremote(vb.port, "exec", "import time; time.sleep(9); print('survived')", check=False)
        assert b"survived" not in out.stdout
        wait_for(lambda: vb.counters().watchdog_resets == 1, what="the watchdog reset")
        assert vb.counters().soft_resets >= 1
        wait_for(lambda: vb.repl_state == "friendly", what="the REPL after the watchdog reset")
        # a hard reset stopped it: main.py did not arm it again (the note was used up)
        out = mpremote(vb.port, "exec", "import time, machine; time.sleep(9); print('survived', machine.reset_cause())")
        assert out.stdout.split() == [b"survived", b"3"]
        out = mpremote(vb.port, "exec", "import machine\n"
                                        "for kw in ({'timeout': 8389}, {'id': 1}):\n"
                                        "    try:\n"
                                        "        machine.WDT(**kw)\n"
                                        "    except ValueError as e:\n"
                                        "        print(e)\n")
        assert out.stdout.decode().splitlines() == ["timeout exceeds 8388", "WDT(1) doesn't exist"]
        assert vb.counters().watchdog_resets == 1


@pytest.mark.vm
def test_a_watchdog_left_running_at_the_prompt_resets_the_board(tmp_path):
    """At a REPL prompt no code runs, but the chip's watchdog counts on: virtual time
    follows real time there while it runs."""
    require_vm()
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "arm").write_text("")
    main = ("import machine, os\n"
            "try:\n"
            "    os.remove('arm')\n"
            "    machine.WDT(timeout=300)\n"
            "except OSError:\n"
            "    pass\n")
    with _board(flash, main) as vb:
        # counted when the reset starts; the next boot's cause is set as its VM starts
        wait_for(lambda: vb.counters().watchdog_resets == 1 and vb.world.watchdog.cause == 3,
                 what="the watchdog reset at the prompt")
        assert not vb.world.watchdog.running and vb.counters().watchdog_resets == 1


def test_the_watchdog_device_is_the_rp2040s():
    from learnboard.emulator.devices.clock import VirtualClock
    from learnboard.emulator.devices.watchdog import PWRON_RESET, WDT_RESET, Watchdog

    clock = VirtualClock()
    wd = Watchdog(clock)
    fired = []
    wd.on_expire = lambda: fired.append(clock.now_us)
    with pytest.raises(ValueError, match="timeout exceeds 8388"):
        wd.start(8389)
    assert not wd.running and wd.cause == PWRON_RESET
    wd.start(100)
    clock.advance_us(99_000)
    wd.feed()
    clock.advance_us(99_000)
    assert not fired
    wd.on_reset("soft")  # Ctrl-D: the chip's watchdog goes on counting
    clock.advance_us(1_000)
    assert fired == [100_000 + 99_000] and not wd.running and wd.expiries == 1
    wd.on_reset("watchdog")
    assert wd.cause == WDT_RESET
    wd.start(100)
    wd.on_reset("hard")  # the RUN pin: stopped, a power-on cause
    clock.advance_us(1_000_000)
    assert wd.cause == PWRON_RESET and len(fired) == 1
    wd.reboot()  # machine.reset(): rp2 reboots through the watchdog
    wd.on_reset("hard")
    assert wd.cause == WDT_RESET


def test_a_starved_step_on_the_in_process_board_is_a_watchdog_reset_the_session_resumes_from(tmp_path):
    from learnboard.cli.connection import open_board
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.schedule import schedule_from_flags
    from learnboard.host.session import TrainConfig, run_session

    from tests.test_session import small_task

    cfg = TrainConfig(task=small_task(tmp_path), schedule=schedule_from_flags(steps=40),
                      checkpoint_every=10, telemetry_every=5)
    with open_board(seed=1) as conn:
        emu = conn.emulator
        fired = []
        count = {"chunk": 0, "total": 0}  # the firmware counts steps per train chunk

        def stall(world):  # a step that holds the firmware for 6 s: no feed meanwhile
            n = emu.app.step_n
            count["total"] += n - count["chunk"] if n >= count["chunk"] else n
            count["chunk"] = n
            if not fired and count["total"] >= 15:
                fired.append(count["total"])
                world.clock.advance_us(6_000_000)

        emu.after_tick = stall
        s = run_session(conn, cfg, RunFolder.create(tmp_path, "starved"))
        assert fired and emu.resets == ["watchdog"]
        assert conn.link.call("status")["flt"] & 8  # F_WATCHDOG for the rest of this boot
    assert s.steps == 40 and s.resets == 1 and s.watchdog_resets == 1


def test_parameters_beyond_the_watchdog_budget_are_refused_naming_the_parameter():
    from learnboard.cli.connection import open_board
    from learnboard.host.link import BoardError
    from learnboard.host.messages import ErrorCode

    with open_board("emu:gen2-clln") as conn:
        link = conn.link
        before = link.call("get_params")
        for args, name in (({"settle_us": 1_000_000}, "settle_us"),
                           ({"oversample": 256}, "oversample"),
                           ({"settle_us": 20_000, "batch": 64}, "settle_us")):
            with pytest.raises(BoardError) as err:
                link.request("set_params", args)
            assert err.value.code == ErrorCode.OUT_OF_RANGE and err.value.field == name
            assert err.value.edge is None
            assert err.value.message.startswith(f"{name} = ") and "watchdog" in err.value.message
        assert link.call("get_params") == before  # nothing changed
        # the same settle time with a batch of one fits in half the 5 s timeout
        assert link.call("set_params", settle_us=1_000_000, batch=1) == {"settle_us": 1_000_000, "batch": 1}


@pytest.fixture
def emulate(tmp_path):
    """``learnboard emulate`` on a fresh flash folder: (process, stdout lines so far, flash)."""
    require_vm()
    flash = tmp_path / "flash"
    proc = subprocess.Popen([sys.executable, "-m", "learnboard", "emulate", "--flash", str(flash), "--seed", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []

    def read() -> None:
        for raw in proc.stdout:
            lines.append(raw.decode().strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: lines, what="the emulator's port")
        yield proc, lines, flash
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.vm
def test_learnboard_repl_hands_the_board_to_mpremote_with_no_watchdog(emulate):
    proc, lines, flash = emulate
    learnboard("flash", "--port", lines[-1], "--board", "gen2-clln")
    out = learnboard("repl", "--port", lines[-1]).stdout.decode().split()
    port = out[-1]
    wait_for(lambda: lines[-1] == port, what="the emulator to announce the port repl printed")
    # as long as you like: 20 s of (virtual) sleep, four times the firmware's timeout
    got = mpremote(port, "exec", "import time; time.sleep(20); print('alive')")
    assert got.stdout.split() == [b"alive"]
    # flash starts the firmware again, with no watchdog report for resets it asked for
    learnboard("flash", "--port", port, "--board", "gen2-clln")
    from learnboard.host.link import Link

    with Link.open(now(lines), timeout=2.0) as link:
        assert link.call("status")["flt"] & 8 == 0


@pytest.mark.vm
def test_a_wedged_firmware_is_rescued_and_reflashed(emulate):
    proc, lines, flash = emulate
    learnboard("flash", "--port", lines[-1], "--board", "gen2-clln")
    # a broken firmware: its main loop waits forever and never feeds the watchdog
    app = flash / "lbfw" / "app.py"
    app.write_text(app.read_text() + "\n\ndef _hang(self):\n    import time\n    while True:\n"
                   "        time.sleep_ms(10)\n\n\nApp.tick = _hang\n")
    from learnboard.host.link import Link

    from learnboard.errors import LinkError

    n = len(lines)
    with Link.open(now(lines), timeout=2.0) as link:
        try:  # the board boots the broken firmware, and from then on resets in a loop
            link.call("reset")
        except LinkError:
            pass  # the reply and the port went with the reset, as over USB
    learnboard_out = subprocess.run([sys.executable, "-m", "learnboard", "repl", "--port", lines[-1], "--rescue",
                                     "--timeout", "120"], capture_output=True, timeout=180)
    assert learnboard_out.returncode == 0, learnboard_out.stderr.decode()
    assert len(lines) > n  # it went round the reset loop at least once
    port = learnboard_out.stdout.decode().split()[-1]
    learnboard("flash", "--port", port, "--board", "gen2-clln")
    assert "_hang" not in app.read_text()
    with Link.open(now(lines), timeout=2.0) as link:
        assert link.hello()["board"] == "gen2-clln"


@pytest.mark.vm
def test_a_training_step_starved_of_feeds_resets_the_board_and_the_session_resumes(tmp_path):
    from learnboard.cli.connection import open_board
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.runlog import read_log
    from learnboard.host.schedule import schedule_from_flags
    from learnboard.host.session import TrainConfig, run_session

    from learnboard.boards import compile_board, load_board
    from tests.test_emulate_with_mpremote_and_pyserial import firmware_files
    from tests.test_session import small_task

    require_vm()
    flash = tmp_path / "flash"
    for f in firmware_files():
        dest = flash / ("lbfw" if f.parent.name == "lbfw" else "") / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    (flash / "board.json").write_bytes(compile_board(load_board("gen2-clln")).to_bytes())
    vb = _board(flash, (flash / "main.py").read_text())
    cfg = TrainConfig(task=small_task(tmp_path), schedule=schedule_from_flags(steps=40),
                      checkpoint_every=10, telemetry_every=5)
    fired = []

    class Starve:
        """At step 15 the step in progress stalls for 6 (virtual) seconds — a bus that
        holds the firmware, which cannot feed the 5 s watchdog meanwhile."""

        def start(self, session): ...
        def tick(self, session): ...
        def finish(self, session, summary): ...

        def update(self, session, rec):
            if not fired and rec.get("kind") == "tlm" and rec["step"] >= 15:
                fired.append(rec["step"])
                with vb.lock:
                    vb.world.clock.advance_us(6_000_000)

    with vb:
        # listen before talking: the firmware arms the watchdog once the console is in
        # binary mode (before that a 0x03 inside a frame would be a Ctrl-C)
        wait_for(lambda: vb.world.watchdog.running, what="the firmware's watchdog")
        with open_board(vb.port, board="gen2-clln", timeout=2.0) as conn:
            rf = RunFolder.create(tmp_path, "starved")
            assert "wdt" in conn.hello["caps"] and conn.hello["flt"] == 0
            s = run_session(conn, cfg, rf, live=Starve())
            hello = conn.link.hello()  # the board booted after a watchdog reset
            assert hello["flt"] == 8 and conn.link.call("status")["flt"] & 8
    assert fired and vb.counters().watchdog_resets == 1
    assert s.steps == 40 and s.resets == 1 and s.watchdog_resets == 1
    recs = read_log(rf.log_path)
    reset = [r for r in recs if r.get("name") == "board_reset"]
    assert len(reset) == 1 and reset[0]["watchdog"] and "watchdog reset" in reset[0]["reason"]
    assert [r for r in recs if r["kind"] == "restore"][0]["step"] == 10  # the last checkpoint
    assert json.loads((rf.path / "summary.json").read_text())["watchdog_resets"] == 1
