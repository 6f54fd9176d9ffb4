"""The learning engine: power-aware coupled learning on simulated networks and boards.

Main names: :class:`LinearEngine`, :class:`Terminals`, :class:`LearningConfig`,
:func:`initial_conductances`, :class:`ToleranceController`, :func:`tail_means`.
Board profiles: :class:`learnboard.engine.board_engine.BoardEngine` (imports the physics;
its twin of the emulated board in :mod:`learnboard.engine.board_model`, `learnboard sim
--board` in :mod:`learnboard.engine.board_sim`).
"""

from learnboard.engine.config import LearningConfig, initial_conductances
from learnboard.engine.controller import ToleranceController, tail_means
from learnboard.engine.linear import LinearEngine, Terminals, TrainResult

__all__ = ["LearningConfig", "LinearEngine", "Terminals", "ToleranceController", "TrainResult",
           "initial_conductances", "tail_means"]
