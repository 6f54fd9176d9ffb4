"""Reliability campaigns, long versions: the figures of docs/reliability.md.

    python benchmarks/reliability.py serial      # drop/corrupt/dup at 1e-5..1e-2 per byte
    python benchmarks/reliability.py insert      # random bytes inserted, 20/200/2000 B/s, 60 s
    python benchmarks/reliability.py safety      # random host commands vs every bound [--vm MICROPYTHON]
    python benchmarks/reliability.py soak        # 100,000 steps, memory on both sides
    python benchmarks/reliability.py brownout    # board resets during 600-step sessions, 5 seeds
    python benchmarks/reliability.py hostcrash   # SIGKILL of `learnboard train`, then --resume
    python benchmarks/reliability.py corruption  # one byte changed mid-log, 20 offsets: export, resume, repair
    python benchmarks/reliability.py lab         # a lab's first week: ports, resume, corruption, disk full,
                                                 # emulator killed mid-flash, stop; records lost, runs mixed
    python benchmarks/reliability.py all

Prints one table row per run; the short versions of the same campaigns run in the test
suite (tests/test_reliability_*.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from learnboard.cli.connection import LinkedInProcessBoard
from learnboard.studies.reliability import resets as bo
from learnboard.studies.reliability.hostcrash import run_hostcrash
from learnboard.studies.reliability.limits import (
    LimitMonitor,
    random_commands,
    random_commands_in_vm,
)
from learnboard.studies.reliability.serial import run_insert_campaign, run_serial_campaign
from learnboard.studies.reliability.soak import run_soak

from learnboard.boards import load_board


def serial(steps: int, seeds: int) -> None:
    print(f"serial faults, gen2-clln in process, {steps} steps with telemetry every step, both directions")
    print("| fault | rate/byte | seeds | completed | bytes hit (to board / to host) | telemetry gaps "
          "| frames unaccounted | requests sent / run on board / cache answers |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("drop", "corrupt", "dup"):
        for rate in (1e-5, 1e-4, 1e-3, 1e-2):
            rows = [run_serial_campaign(kind, rate, steps=steps, seed=s) for s in range(seeds)]
            print(f"| {kind} | {rate:g} | {seeds} | {sum(r.completed for r in rows)}/{seeds} "
                  f"| {sum(r.injected_to_board for r in rows)} / {sum(r.injected_to_host for r in rows)} "
                  f"| {sum(r.telemetry_gaps for r in rows)} of {steps * seeds} "
                  f"| {sum(r.unaccounted for r in rows)} "
                  f"| {sum(r.host_requests for r in rows)} / {sum(r.board_requests for r in rows)} / "
                  f"{sum(r.board_cache_hits for r in rows)} |", flush=True)


def insert(seeds: int, duration_s: float) -> None:
    print(f"inserted bytes, gen2-clln in process, a training session with telemetry every step, "
          f"{duration_s:g} board seconds of noise in both directions")
    print("| B/s | seeds | sessions complete | bytes inserted (to board / to host; control chars to board) "
          "| steps | telemetry lost on the line / gaps in the log | received but not logged "
          "| requests sent / run on board / retries / cache answers | frames unaccounted |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in (20.0, 200.0, 2000.0):
        rows = [run_insert_campaign(rate, duration_s=duration_s, seed=s) for s in range(seeds)]
        for r in rows:
            if r.error:
                print(f"  seed {rows.index(r)}: {r.error}")
        print(f"| {rate:g} | {seeds} | {sum(r.completed for r in rows)}/{seeds} "
              f"| {sum(r.inserted_to_board for r in rows)} / {sum(r.inserted_to_host for r in rows)}; "
              f"{sum(r.control_to_board for r in rows)} "
              f"| {sum(r.steps for r in rows)} "
              f"| {sum(r.telemetry_lost_on_line for r in rows)} / {sum(r.telemetry_gaps for r in rows)} "
              f"| {sum(r.log_lost for r in rows)} "
              f"| {sum(r.host_requests for r in rows)} / {sum(r.board_requests for r in rows)} / "
              f"{sum(r.host_retries for r in rows)} / {sum(r.board_cache_hits for r in rows)} "
              f"| {sum(r.unaccounted for r in rows)} |", flush=True)


def safety(commands: int, seeds: int, exclude: tuple[str, ...] = (), vm: str | None = None) -> None:
    where = "in process" if vm is None else f"in the MicroPython VM {vm}"
    whole = "every firmware loop pass" if vm is None else "every request and event"
    print(f"safety: {commands} random host commands per seed, {where}; every bound of the "
          f"description checked after {whole} (all of the state) and after every actuation "
          "(edges and drivers)" + (f"; without {', '.join(exclude)}" if exclude else ""))
    tables = []
    print("| board | seeds | commands | refused | trainings | fault events | state checks | actuation checks "
          "| violations |")
    print("|---|---|---|---|---|---|---|---|---|")
    for profile in ("gen2-clln", "gen1-digipot"):
        board = load_board(profile)
        mon = LimitMonitor(board)
        sent = refused = trained = faults = 0
        for seed in range(seeds):
            if vm is not None:
                with tempfile.TemporaryDirectory(prefix="lb-safety-") as flash:
                    log = random_commands_in_vm(board, mon, flash, n=commands, seed=seed,
                                                executable=None if vm == "default" else vm,
                                                exclude=exclude)
            else:
                with LinkedInProcessBoard(board, seed=seed, after_tick=mon) as emu:
                    log = random_commands(emu.link, board, n=commands, seed=seed, exclude=exclude)
                    if emu.error is not None:
                        raise SystemExit(f"{profile} seed {seed}: firmware loop died: {emu.error!r}")
            sent, refused, trained = sent + log.sent, refused + log.refused, trained + log.trained
            faults += log.faults
        print(f"| {profile} | {seeds} | {sent} | {refused} | {trained} | {faults} | {mon.checks} | {mon.actuation_checks} "
              f"| {mon.n_violations} |", flush=True)
        tables.append((profile, mon))
    print()
    print("| board | bound | limit | worst value | worst margin | violations |")
    print("|---|---|---|---|---|---|")
    for profile, mon in tables:
        for row in mon.table():
            print(f"| {profile} | {row} |")
    for profile, mon in tables:
        for v in mon.violations[:5]:
            print(f"  {profile}: {v}")


def soak(steps: int) -> None:
    chunk = max(1, steps // 20)
    t0 = time.process_time()

    def progress(step: int, groups: dict[str, int]) -> None:
        print(f"  soak progress: {step} steps, {time.process_time() - t0:.0f} s CPU, bytes {groups}", flush=True)

    r = run_soak(steps, chunk=chunk, every=100, on_chunk=progress)
    print(f"soak: {r.steps} steps (one example per step) on gen2-clln in process in {r.seconds:.0f} s "
          f"({r.steps / r.seconds:.0f} steps/s under tracemalloc), {r.telemetry} telemetry frames")
    print("| side | bytes after warm-up | at the end | growth | slope B/1000 steps |")
    print("|---|---|---|---|---|")
    for group in ("firmware", "host", "emulator", "other"):
        print(f"| {group} | {r.samples[0][1][group]} | {r.samples[-1][1][group]} | {r.growth(group)} "
              f"| {r.slope_per_1000_steps(group):.1f} |", flush=True)


def brownout(seeds: int, steps: int, resets: int) -> None:
    t0 = time.process_time()
    reps, err, pw = bo.campaign(seeds, steps, resets)
    print(f"board resets: gen2-clln in process, default task, {steps} steps, checkpoint every 100, "
          f"{resets} resets per session at seeded random steps (power-on and hard alternating), "
          f"{seeds} seeds; {time.process_time() - t0:.0f} s CPU")
    print(f"uninterrupted, same seeds: C/C0 {err.lo:.4g}..{err.hi:.4g} (mean {err.mean:.4g} +- 2 sd "
          f"{2 * err.sd:.2g}); true power {pw.lo * 1e3:.4g}..{pw.hi * 1e3:.4g} mW "
          f"(mean {pw.mean * 1e3:.4g} +- 2 sd {2 * pw.sd * 1e3:.2g})")
    print("uninterrupted per seed: C/C0 " + ", ".join(f"{v:.4g}" for v in err.values)
          + "; true power mW " + ", ".join(f"{v * 1e3:.4g}" for v in pw.values))
    print("| seed | resets (kind@step) | detected | restored to | redone steps | indices / supersedes "
          "| completed | C/C0 | in spread | true power mW | in spread |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reps:
        shots = ", ".join(f"{s.kind}@{s.at_step}" for s in r.shots)
        print(f"| {r.seed} | {shots} | {r.detected}/{len(r.shots)} | {r.restores} | {r.redone_steps} "
              f"| {'ok' if r.indices_ok else 'BAD'} / {'ok' if r.supersedes_ok and r.restores_ok else 'BAD'} "
              f"| {r.completed} | {r.relative_error:.4g} | {err.within(r.relative_error)} "
              f"| {r.true_power * 1e3:.4g} | {pw.within(r.true_power)} |", flush=True)


def hostcrash(seeds: int, steps: int, kills: int) -> None:
    import tempfile
    from pathlib import Path

    print(f"host crashes: `learnboard train` (emulated gen2-clln, default task, {steps} steps, checkpoint "
          f"every 100, telemetry every 10) killed with SIGKILL {kills} times per run at seeded random "
          f"delays of 0.5-6 s after each (re)start, `--resume` after each; {seeds} seeds")
    print("| seed | kills (in session / in start-up) | records cut by a kill | newest record before "
          "a kill, max age s | restores | records | indices 0..n-1 | pre-kill log unchanged "
          "| duplicated | steps missing | completed | C/C0 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = run_hostcrash(Path(tmp), seed=seed, steps=steps, kills=kills)
            live = sum(k.lost_window is not None for k in r.kills)
            cut = sum(k.cut_bytes > 0 for k in r.kills)
            w = r.max_lost_window
            print(f"| {seed} | {live} / {len(r.kills) - live} | {cut} | {'-' if w is None else f'{w:.3f}'} "
                  f"| {r.restores} | {r.records} | {r.indices_ok} | {r.prefix_ok} | {r.duplicates} "
                  f"| {len(r.missing_steps)} | {r.completed} ({r.summary_steps} steps) "
                  f"| {r.relative_error:.4g} |", flush=True)


def corruption(seeds: int, offsets: int) -> None:
    import tempfile
    from pathlib import Path

    from learnboard.studies.reliability.records import crashed_run, run_corruption

    print(f"log corruption: a real 300-record run (emulated gen2-clln, telemetry every step, cut as a crash "
          f"leaves it), one byte changed at {offsets} seeded random offsets, each on a fresh copy; "
          "`export --csv`, `train --resume`, `repair` on each")
    print("| seed | offsets | in the last record (tail) | export: other rows kept + warning | resume refused, "
          "log unchanged | repaired copy whole | good records lost |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        run = crashed_run(Path(tmp) / "runs")
        for seed in range(seeds):
            work = Path(tmp) / f"seed{seed}"
            work.mkdir()
            r = run_corruption(run, work, offsets=offsets, seed=seed)
            tails = sum(s.tail for s in r.shots)
            print(f"| {seed} | {len(r.shots)} | {tails} | {sum(s.export_ok for s in r.shots)}/{len(r.shots)} "
                  f"| {sum(s.resume_refused for s in r.shots)}/{len(r.shots) - tails} "
                  f"| {sum(s.repaired for s in r.shots)}/{len(r.shots)} | {sum(s.lost for s in r.shots)} |",
                  flush=True)


def lab(seeds: int, offsets: int, faults: int, cases: str, vm: str | None) -> None:
    import os
    import platform
    import tempfile

    from learnboard.emulator.vm import micropython_executable
    from learnboard.studies.reliability.lab import CASES, TITLES, run_lab, table

    chosen = tuple(c for c in CASES if c in cases)
    print(f"lab campaign: cases {', '.join(chosen)}; {seeds} seed(s), {offsets} corruption offsets, "
          f"{faults} disk-full moments per seed; `learnboard emulate` ({micropython_executable(vm)}) on a pty, "
          f"the real command line in subprocesses; {os.cpu_count()} cores, {platform.platform()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")

    def show(res) -> None:
        state = "ok" if res.ok else "FAILED"
        print(f"  {res.case} ({TITLES[res.case]}) seed {res.seed}: {state}, {res.lost} lost, {res.mixed} mixed, "
              f"{res.seconds:.0f} s; " + "; ".join(res.facts), flush=True)
        for p in res.problems:
            print(f"    PROBLEM: {p}", flush=True)

    with tempfile.TemporaryDirectory(prefix="lb-lab-") as tmp:
        results = run_lab(tmp, seeds=seeds, offsets=offsets, faults=faults, cases=chosen, vm=vm, on_result=show)
    print()
    print("\n".join(table(results)))
    bad = [r for r in results if not r.ok]
    print(f"{len(results) - len(bad)}/{len(results)} case runs as expected; records lost "
          f"{sum(r.lost for r in results)}, runs mixed {sum(r.mixed for r in results)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("campaign", choices=("serial", "insert", "safety", "soak", "brownout", "hostcrash", "corruption",
                                            "lab", "all"))
    ap.add_argument("--soak-steps", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=None, help="serial 200, brownout 600, hostcrash 600")
    ap.add_argument("--seeds", type=int, default=None, help="serial/safety 3, brownout 5, hostcrash 3, lab 2")
    ap.add_argument("--commands", type=int, default=300)
    ap.add_argument("--exclude", action="append", default=[], metavar="COMMAND",
                    help="safety: leave this command out of the random mix (repeatable)")
    ap.add_argument("--vm", metavar="MICROPYTHON", default=None,
                    help="safety: run the firmware in this MicroPython VM binary ('default': the one "
                         "beside Python) instead of in process; the world's state is checked after "
                         "every actuation and after every request")
    ap.add_argument("--duration", type=float, default=60.0,
                    help="insert: board seconds of noise per session (default 60)")
    ap.add_argument("--resets", type=int, default=3, help="brownout: resets per session")
    ap.add_argument("--kills", type=int, default=5, help="hostcrash: SIGKILLs per run")
    ap.add_argument("--offsets", type=int, default=20, help="corruption, lab: damaged offsets per seed")
    ap.add_argument("--faults", type=int, default=5, help="lab: disk-full moments per seed")
    ap.add_argument("--cases", default="abcdef",
                    help="lab: which cases (letters of: a two programs on a port, b resume without --port, "
                         "c corruption, d disk full, e emulator killed mid-flash, f stop)")
    ap.add_argument("--micropython", metavar="PATH", default=None,
                    help="lab: the VM binary of `learnboard emulate` (default: as emulate chooses)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.campaign in ("serial", "all"):
        serial(a.steps or 200, a.seeds or 3)
    if a.campaign in ("insert", "all"):
        insert(a.seeds or 3, a.duration)
    if a.campaign in ("safety", "all"):
        safety(a.commands, a.seeds or 3, tuple(a.exclude), a.vm)
    if a.campaign in ("brownout", "all"):
        brownout(a.seeds or 5, a.steps or 600, a.resets)
    if a.campaign in ("hostcrash", "all"):
        hostcrash(a.seeds or 3, a.steps or 600, a.kills)
    if a.campaign in ("corruption", "all"):
        corruption(a.seeds or 3, a.offsets)
    if a.campaign in ("lab", "all"):
        lab(a.seeds or 2, a.offsets, a.faults, a.cases, a.micropython)
    if a.campaign in ("soak", "all"):
        soak(a.soak_steps)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
