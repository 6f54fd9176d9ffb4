"""How large is the twin networks' learning bias on gen2-clln-xor? (docs/tasks.md, known limits)

On the board model of ``learnboard sim --board`` (the emulated board of ``--seed``: its
device spread, converters and twin networks), at the session's starting gates: the mean
update term ``<(dV^C)^2 - (dV^F)^2>`` per edge with no nudge (eta 0: the clamped network
driven to the free one's own outputs, so everything left is the twins' mismatch and the
converters) against the part a nudge of eta 0.5 adds. Prints the two norms (V^2), their
ratio and the cosine between them, for the profile and for a copy whose transistors
match exactly (``vt_spread = beta_spread = 0``).

    python benchmarks/xor_twin_bias.py [--seeds 0 2] [--inits low uniform]

A second of CPU.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from learnboard.boards import load_board
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_task
from learnboard.engine.config import LearningConfig

MATCHED = """extends = "gen2-clln-xor"
[board]
name = "gen2-clln-xor-matched"
[parts.nmos]
vt_spread = 0
beta_spread = 0
"""


def terms(board, seed: int, init: str, eta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(bias, signal): the per-edge update term at eta 0, and what eta adds to it."""
    eng = BoardEngine(board, board_task(board, seed=seed),
                      LearningConfig(alpha=1.0, eta=eta, lam=0.0), model="board", seed=seed)
    state = eng.initial_state(init)
    eng._twin = state.copy()  # the clamped network's gates start where the free one's do
    out = {}
    for e in (0.0, eta):
        eng._warm = eng._warm_c = None
        df, dc, _, _ = eng.states(state, e)
        out[e] = np.mean(dc ** 2 - df ** 2, axis=0)
    return out[0.0], out[eta] - out[0.0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--inits", nargs="+", default=["low", "uniform"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        matched = Path(tmp) / "matched.toml"
        matched.write_text(MATCHED)
        for board in (load_board("gen2-clln-xor"), load_board(matched)):
            for seed in a.seeds:
                for init in a.inits:
                    bias, sig = terms(board, seed, init)
                    nb, ns = np.linalg.norm(bias), np.linalg.norm(sig)
                    print(f"{board.name:22s} seed {seed} {init:7s}: |bias| {nb:.2e} V^2, "
                          f"|nudge part| {ns:.2e} V^2, ratio {nb / ns:.2f}, "
                          f"cosine {bias @ sig / (nb * ns):+.2f}")


if __name__ == "__main__":
    main()
