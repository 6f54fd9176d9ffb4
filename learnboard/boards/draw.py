"""Draw a board's network: nodes, edges by kind, inputs, outputs and ground (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnboard.boards.schema import Board
from learnboard.errors import InputError

EDGE_COLORS = {"resistor": "0.45", "digipot": "tab:blue", "transistor": "tab:orange"}


def layout(board: Board) -> np.ndarray:
    """Node positions: the board's own, or a circle when the file gives none."""
    if board.positions is not None:
        return np.asarray(board.positions, dtype=float)
    angle = 2 * np.pi * np.arange(board.n_nodes) / board.n_nodes
    return np.column_stack([np.cos(angle), np.sin(angle)])


def plot_board(board: Board, path: str | Path, *, dpi: int = 120) -> Path:
    """Write a PNG (or any matplotlib format, by suffix) of ``board`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    pos = layout(board)
    span = float(np.ptp(pos, axis=0).max()) or 1.0
    # an edge much longer than the typical one wraps around (periodic lattice): draw an arc
    lengths = np.linalg.norm(pos[board.edge_array()[:, 0]] - pos[board.edge_array()[:, 1]], axis=1)
    typical = float(np.median(lengths)) or 1.0
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    for e, (a, b) in zip(board.edges, board.edge_array(), strict=True):
        long = np.linalg.norm(pos[a] - pos[b]) > 1.6 * typical
        ax.add_patch(FancyArrowPatch(
            pos[a], pos[b], arrowstyle="-", color=EDGE_COLORS[e.kind], lw=2.0,
            connectionstyle=f"arc3,rad={0.25 if long else 0.0}", alpha=0.85 if long else 1.0,
            linestyle="--" if long else "-", zorder=1))
        mid = (pos[a] + pos[b]) / 2
        if not long:
            ax.text(mid[0], mid[1], e.name, fontsize=6, color="0.3", ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
                    zorder=2)
    role = {}
    for p in board.inputs:
        role[p.a] = ("tab:green", p.name + ("+" if p.b is not None else ""))
        if p.b is not None and p.b != board.ground:
            role[p.b] = ("tab:green", p.name + "-")
    for p in board.outputs:
        role[p.a] = ("tab:red", p.name + ("+" if p.b is not None else ""))
        if p.b is not None and p.b != board.ground:
            role[p.b] = ("tab:red", p.name + "-")
    for i, (x, y) in enumerate(pos):
        color, label = role.get(i, ("white", ""))
        marker = "v" if i == board.ground else "o"
        face = "black" if i == board.ground else color
        ax.scatter([x], [y], s=260, marker=marker, c=[face], edgecolors="black", zorder=3)
        ax.text(x, y + 0.06 * span, board.nodes[i], fontsize=8, ha="center", va="bottom", zorder=4)
        if label:
            ax.text(x, y - 0.07 * span, label, fontsize=9, weight="bold", color=color,
                    ha="center", va="top", zorder=4)
    kinds = sorted({e.kind for e in board.edges})
    handles = [Line2D([], [], color=EDGE_COLORS[k], lw=2, label=k) for k in kinds]
    handles += [
        Line2D([], [], marker="o", ls="", mfc="tab:green", mec="black", label="input"),
        Line2D([], [], marker="o", ls="", mfc="tab:red", mec="black", label="output"),
        Line2D([], [], marker="v", ls="", mfc="black", mec="black", label="ground"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(f"{board.name}: {board.n_nodes} nodes, {board.n_edges} edges, "
                 f"{board.networks} network{'s' if board.n_nets > 1 else ''}", fontsize=10)
    ax.set_aspect("equal")
    pad = 0.2 * span
    ax.set_xlim(pos[:, 0].min() - pad, pos[:, 0].max() + pad)
    ax.set_ylim(pos[:, 1].min() - pad, pos[:, 1].max() + pad)
    ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, dpi=dpi)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write the plot: {exc}", source=str(path), field="--plot") from None
    finally:
        plt.close(fig)
    return path
