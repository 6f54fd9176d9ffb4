"""Learning steps per second a board's firmware manages on an RP2040, as the cost model
(:mod:`learnboard.emulator.cost_model`) predicts it.

The unchanged firmware ``App`` runs a few learning steps of the default task on the
in-process emulated board with the ``rp2040`` cost model; the virtual time a step takes
— settling waits, conversions, bus transfers and every ``machine``/``time`` call the
firmware makes — gives the rate. The Python between those calls (the learning rule's
arithmetic) is not charged, so the board runs at most this fast.
"""

from __future__ import annotations

from learnboard.boards import Board, compile_board, load_board

WARM_UP = 3  # steps before timing: the first ones solve and move more


class _NullPort:
    def read(self):
        return None

    def write(self, data) -> None:
        pass


def rp2040_steps_per_s(board: str | Board, *, steps: int = 10, batch: int = 1,
                       seed: int = 0, cost: str = "rp2040") -> float:
    """Predicted learning steps per second of ``board`` (``batch`` examples a step)."""
    from learnboard.emulator.machine_layer import build
    from learnboard.emulator.world import World
    from learnboard.firmware.lbfw import app as app_mod

    from learnboard.tasks import load_task

    board = board if isinstance(board, Board) else load_board(board)
    compiled = compile_board(board)
    world = World(board, seed=seed)
    machine, time = build(world, cost=cost)
    app = app_mod.App(compiled.body, compiled.sha256, machine, time, _NullPort())
    task = load_task("regression", board=board, seed=seed)
    app.upload_examples({"x": task.x_train.tolist(), "y": task.y_train.tolist(), "clear": True})
    params = {"batch": batch}
    if board.has_gates:
        params["alpha"] = 1.0  # as a session sets it: gates really pulse
    app.set_params(params)
    for _ in range(WARM_UP):
        app.locked_step()
    t0 = world.clock.now_us
    for _ in range(steps):
        app.locked_step()
    return steps * 1e6 / max(1, world.clock.now_us - t0)
