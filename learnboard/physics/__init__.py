"""Circuit physics: device models, circuits, the DC solver and the ngspice cross-check.

Main names are re-exported here; :mod:`learnboard.physics.spice` (ngspice runner) is
imported on demand.
"""

from learnboard.physics.circuit import (
    DIODE,
    RESISTOR,
    TRANSISTOR,
    Circuit,
    with_mismatch,
)
from learnboard.physics.devices import (
    digipot_resistance,
    digipot_tap_for_resistance,
    diode_current,
    nmos_current,
)
from learnboard.physics.laplacian import LaplacianFactor
from learnboard.physics.solver import (
    DCSolution,
    Fix,
    FixDrop,
    LinearSolver,
    solve,
    solve_linear_batch,
)

__all__ = [
    "DIODE",
    "RESISTOR",
    "TRANSISTOR",
    "Circuit",
    "DCSolution",
    "Fix",
    "FixDrop",
    "LaplacianFactor",
    "LinearSolver",
    "diode_current",
    "digipot_resistance",
    "digipot_tap_for_resistance",
    "nmos_current",
    "solve",
    "solve_linear_batch",
    "with_mismatch",
]
