"""The world's one rule for when a kept DC solve still holds (``SolveCache``).

A solve holds while nothing was actuated, no output settles, no gate moves and idle
gate leakage cannot have moved a gate by ``resolve_tol``; a stuck-edge fault set behind
the world's back voids it. The node volts kept for reads follow the same rule.
"""

from __future__ import annotations

from learnboard.emulator.world import World


def _actuate(world: World) -> None:
    """An SPI write to the DAC's bus: an actuation whatever it says."""
    dac = next(iter(world.board.dacs.values()))
    world.spi_write(world.board.spi[dac.bus].id, b"\x10\x00", 1_000_000)


def _settled(world: World) -> int:
    world.clock.advance_us(10_000)  # past every output's settling
    world.solution(0)
    return world.clock.now_us


def test_a_solve_holds_until_an_actuation():
    world = World("gen2-clln", seed=3)
    cache = world._cache
    now = _settled(world)
    assert cache.holds(0, now) and cache.quiet(now)
    solves = world.solves
    world.solution(0)
    assert world.solves == solves  # held: no new solve
    _actuate(world)
    now = world.clock.now_us
    assert not cache.holds(0, now) and not cache.quiet(now)
    assert cache.node_volts(0, now) is None


def test_leakage_ends_a_solve_at_resolve_tol():
    world = World("gen2-clln", seed=3, resolve_tol=1e-5)
    cache = world._cache
    now = _settled(world)
    # the fastest gate drifts by resolve_tol in tol / max_leak seconds
    horizon_us = world.resolve_tol / world._max_leak * 1e6
    assert cache.holds(0, now + int(horizon_us * 0.9))
    assert not cache.holds(0, now + int(horizon_us * 1.1) + 1)
    world.faults.leak_scale = 0.0  # no leakage: it holds for ever
    assert cache.holds(0, now + 10 ** 12)


def test_node_volts_follow_the_same_rule():
    world = World("gen2-clln", seed=3)
    cache = world._cache
    _settled(world)
    world._node_volts(0, 1)  # a read keeps the node volts
    now = world.clock.now_us
    assert cache.node_volts(0, now) is not None
    world.faults.stuck_edges.add((0, 2))  # a fault set directly: not yet applied
    assert cache.node_volts(0, now) is None and not cache.holds(0, now)
    world.solution(0)  # applies it (the edge keeps its state)
    assert world._stuck_values.keys() == {(0, 2)}


def test_read_state_restores_the_solve_bookkeeping():
    world = World("gen2-clln", seed=3)
    _settled(world)
    kept = world.read_state()
    solves = world.solves
    world.clock.advance_us(10_000_000)  # idle gates leak far beyond resolve_tol
    world.solution(0)
    assert world.solves == solves + 1
    world.restore_read_state(kept)
    assert world.solves == solves and world._cache.holds(0, world.clock.now_us)
