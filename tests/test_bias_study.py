"""The learning-bias study on the gen2-clln board twin: its knobs and its remedy."""

import numpy as np
from learnboard.studies.paper import bias

from learnboard.boards.schema import TransistorPart


def test_scaled_board_scales_only_the_bias_sources():
    base = bias.scaled_board(mismatch=1.0, leak=1.0)
    b = bias.scaled_board(mismatch=2.0, leak=0.0)
    p0 = next(p for p in base.parts.values() if isinstance(p, TransistorPart))
    p = next(p for p in b.parts.values() if isinstance(p, TransistorPart))
    assert p.vt_spread == 2 * p0.vt_spread and p.beta_spread == 2 * p0.beta_spread
    assert p.gate_leak == 0.0 and p.vt == p0.vt and p.beta == p0.beta


def test_zero_nudge_update_is_the_bias():
    # nominal twins without mismatch: the zero-nudge update is (nearly) nothing; with the
    # emulated mismatch it is not (the clamped network is other transistors)
    small = bias.Twin(bias.scaled_board(mismatch=0.0), 0).null_update()
    big = bias.Twin(bias.scaled_board(mismatch=2.0), 0).null_update()
    assert np.abs(big).max() > 10 * max(np.abs(small).max(), 1e-12)


def test_null_offset_lowers_the_floor_of_a_twin_mismatch():
    # twice the emulated board's twin mismatch: the plain rule stalls an order of
    # magnitude above the floor the null offset reaches
    def floor(remedy):
        twin = bias.Twin(bias.scaled_board(mismatch=2.0), 0)
        return bias.tail([r[1] for r in bias.train(twin, "A", 1000, remedy=remedy)])

    plain, fixed = floor(None), floor(bias.NullOffset(10))
    assert fixed < plain / 5
