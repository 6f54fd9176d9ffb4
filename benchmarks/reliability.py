"""Reliability campaigns, long versions: the figures of docs/reliability.md.

    python benchmarks/reliability.py serial      # drop/corrupt/dup at 1e-5..1e-2 per byte
    python benchmarks/reliability.py safety      # random host commands vs the limits
    python benchmarks/reliability.py soak        # 100,000 steps, memory on both sides
    python benchmarks/reliability.py all

Prints one table row per run; the short versions of the same campaigns run in the test
suite (tests/test_reliability_*.py).
"""

from __future__ import annotations

import argparse
import time

from learnboard.emulator.inprocess import InProcessBoard

from learnboard.boards import load_board
from learnboard.reliability.safety import LimitMonitor, random_commands
from learnboard.reliability.serial import run_serial_campaign
from learnboard.reliability.soak import run_soak


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


def safety(commands: int, seeds: int) -> None:
    print(f"safety: {commands} random host commands per seed; limits checked after every firmware loop pass")
    print("| board | seeds | commands | refused | trainings | checks | worst node V / limit "
          "| worst edge I / limit | worst gate / max | violations |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for profile in ("gen2-clln", "gen1-digipot"):
        board = load_board(profile)
        mon = LimitMonitor(board)
        sent = refused = trained = 0
        for seed in range(seeds):
            with InProcessBoard(board, seed=seed, after_tick=mon) as emu:
                log = random_commands(emu.link, board, n=commands, seed=seed)
                if emu.error is not None:
                    raise SystemExit(f"{profile} seed {seed}: firmware loop died: {emu.error!r}")
            sent, refused, trained = sent + log.sent, refused + log.refused, trained + log.trained
        print(f"| {profile} | {seeds} | {sent} | {refused} | {trained} | {mon.checks} | {mon.worst_node:.3f} "
              f"| {mon.worst_current:.3f} | {mon.worst_gate:.3f} | {len(mon.violations)} |", flush=True)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("campaign", choices=("serial", "safety", "soak", "all"))
    ap.add_argument("--soak-steps", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--commands", type=int, default=300)
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.campaign in ("serial", "all"):
        serial(a.steps, a.seeds)
    if a.campaign in ("safety", "all"):
        safety(a.commands, a.seeds)
    if a.campaign in ("soak", "all"):
        soak(a.soak_steps)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
