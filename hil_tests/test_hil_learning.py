"""Learning on this very board: the task reaches its tolerance with lambda = 0, and the
closed-loop tolerance controller (docs/engine.md) ends at lower board-reported power within that tolerance.

Runs real training sessions (``learnboard.host.session.run_session``, what
``learnboard train`` runs) from the same initial edge state. The task and step budget
are options: ``--hil-task`` (default ``regression``, which the emulated CI board learns
in about a hundred steps) and ``--hil-steps``.
"""

from __future__ import annotations

import pytest
from learnboard.host.connect import Connection
from learnboard.host.runfolder import RunFolder
from learnboard.host.schedule import Phase, Schedule, Stop
from learnboard.host.session import TrainConfig, run_session


def session(link, board, tmp_path, name, phase, steps, task, alpha):
    conn = Connection(link, link.hello(), board, "board under test")
    config = TrainConfig(task=task, alpha=alpha, telemetry_every=10, checkpoint_every=50, name=name,
                         schedule=Schedule(phases=[phase], init="uniform", chunk=10,
                                           stop=Stop(steps=steps)))
    return run_session(conn, config, RunFolder.create(tmp_path, name))


@pytest.fixture
def learning_options(request):
    cfg = request.config
    return cfg.getoption("--hil-task"), cfg.getoption("--hil-steps"), cfg.getoption("--hil-alpha")


def test_task_reaches_tolerance_and_controller_lowers_power(link, board, tmp_path, learning_options):
    task, steps, alpha = learning_options
    plain = session(link, board, tmp_path, "lambda0", Phase(kind="constant", lam=0.0), steps, task, alpha)
    assert plain.tolerance is not None
    assert plain.steps == steps
    assert plain.relative_error < plain.tolerance, (
        f"{task}: relative error {plain.relative_error:.4f} after {steps} steps, tolerance "
        f"{plain.tolerance:.4f}")
    tuned = session(link, board, tmp_path, "controller",
                    Phase(kind="tolerance", tau="task", start=0.02, every=10, up=1.1, down=0.5),
                    steps, task, alpha)
    assert tuned.initial_power == pytest.approx(plain.initial_power, rel=0.05), "not the same start"
    assert tuned.relative_error < 1.5 * tuned.tolerance, (
        f"controller session ended at relative error {tuned.relative_error:.4f} "
        f"(tolerance {tuned.tolerance:.4f})")
    assert tuned.power < plain.power, (
        f"controller power {tuned.power:.3e} W is not below lambda=0 power {plain.power:.3e} W")
    print(f"\n{task}, {steps} steps: lambda=0 rel {plain.relative_error:.4f} power {plain.power:.3e} W; "
          f"controller rel {tuned.relative_error:.4f} power {tuned.power:.3e} W (lambda {tuned.lam:.3g}; "
          f"ratio {plain.power / tuned.power:.2f})")
