"""What ``learnboard paper`` runs: one :class:`Plan` of sweep grids, default or ``--quick``.

Every part of the report is a sweep grid (:mod:`learnboard.studies.sweep`); all runs go into one
sweep folder, so runs shared by two figures run once and an interrupted report resumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from learnboard.reference import reference_file, reference_folder

DECADES = [0.0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3]
HALF_DECADES = [3.16e-9, 3.16e-8, 3.16e-7, 3.16e-6, 3.16e-5]
BOARD_LEARNING = {"alpha": 2.0, "eta": 0.5}  # gates move ~mV per step: learns in a few hundred


@dataclass
class Plan:
    """The grids behind the report.

    Args:
        networks: sweep network entries for the lambda scan (figures 1 and 3).
        seeds: how many learnable task seeds (notebook-style draws) per network the scan uses.
        candidate_seeds / screen_below: task seeds 0..n-1 are screened with a lambda-0 run;
            a (network, seed) task is used only if that run reaches C/C0 < screen_below
            (a filter: some random tasks plateau; whether the network could represent them
            is decided separately, by ``inverse_check``).
        lams: lambda values of the scan (0 first).
        steps: steps of every linear run (the lambda² law shows after ~1e5).
        ic_networks / ic_inits / ic_k0 / ic_lams: the initial-condition grid (figure 2).
        taus / tol_networks: tolerance-controller runs (figure 4).
        reference_rows: also run every row of the reference results (an exact re-run of the
            authors' published algorithm on r1) on the first network, which must be r1.
        board / board_steps / board_lams / board_seeds / board_train_size: gen2-clln runs,
            nominal and with device imperfections (figure 5, transistor networks).
        gradient_steps: steps of the power-gradient section's runs (the transistor rule's
            local power term against the exact gradient on the nominal board; its grid is
            :class:`learnboard.studies.paper.power_gradient.GradientPlan`, smaller with
            ``quick``).
        emulated_steps / emulated_lams: host training sessions on the emulated board
            (firmware in the loop, the emulator's device imperfections); 0 skips them.
        noise / noise_lams: noisy-target grid on the first network (figure 6).
        strong_lams / strong_replicas / strong_perturb: the strong-lambda end as distributions:
            ``strong_replicas`` runs per lambda on the first task, each from k0 perturbed by
            ``strong_perturb`` (relative); 0 replicas skips them.
        small_alpha: check the small-α limit of those distributions (same α × steps, α
            halved until they stop moving; :mod:`learnboard.studies.paper.small_alpha`).
        inverse_check / inverse_starts / inverse_more_starts / inverse_maxiter: which
            screened tasks get the representability check (``filtered``: those the filter
            dropped; ``all``; ``none``), its random starts (after the trained and uniform
            ones), the further random starts tried while none is below ``screen_below``,
            and L-BFGS-B iterations per start (:mod:`learnboard.engine.inverse`).
    """

    networks: list[dict]
    seeds: int = 2
    lams: list[float] = field(default_factory=lambda: list(DECADES))
    steps: int = 100_000
    ic_networks: int = 3
    ic_inits: list[str] = field(default_factory=lambda: ["uniform", "low"])
    ic_k0: list[float] = field(default_factory=lambda: [1.0, 0.1, 0.01])
    ic_lams: list[float] = field(default_factory=lambda: [0.0, 1e-8, 1e-6])
    taus: list[float] = field(default_factory=lambda: [1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    tol_networks: int = 3
    reference_rows: bool = True
    board: str | None = "gen2-clln"
    board_steps: int = 300
    board_lams: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.5])
    board_seeds: list[int] = field(default_factory=lambda: [0, 1])
    board_train_size: int = 8
    emulated_steps: int = 200
    gradient_steps: int = 1000
    emulated_lams: list[float] = field(default_factory=lambda: [0.0, 0.05])
    bias_steps: int | None = None  # the learning-bias study's floor runs (None: 1500 quick, 4000)
    noise: list[float] = field(default_factory=lambda: [0.01, 0.03])
    noise_lams: list[float] = field(default_factory=lambda: [0.0, 1e-8, 1e-7, 1e-6, 1e-5])
    strong_lams: list[float] = field(default_factory=lambda: [1e-5, 1e-4, 1e-3])
    strong_replicas: int = 20
    strong_perturb: float = 1e-12
    small_alpha: bool = True
    candidate_seeds: int = 3
    screen_below: float = 1e-5
    quick: bool = False
    source: str = "generated"
    inverse_check: str = "filtered"
    inverse_starts: int = 8
    inverse_more_starts: int = 24
    inverse_maxiter: int = 3000

    @property
    def first(self) -> dict:
        return self.networks[0]

    def screen_spec(self) -> dict:
        """Lambda-0 runs of every candidate task (they are also the scan's lambda-0 runs)."""
        return {"steps": self.steps, "grid": {"lam": [0.0], "seeds": self.candidate_seeds},
                "networks": self.networks}

    def specs(self, chosen: dict[str, list[int]]) -> dict[str, dict]:
        """Sweep specs per part of the report, on the learnable tasks ``chosen`` (label -> seeds)."""
        usable = [n for n in self.networks if chosen.get(n["label"])]
        scan = [{**n, "seeds": chosen[n["label"]][: self.seeds]} for n in usable]
        one = [{**n, "seeds": chosen[n["label"]][:1]} for n in usable]
        first = {**self.first, "seeds": [0]}
        out: dict[str, dict] = {
            "scan": {"steps": self.steps, "grid": {"lam": self.lams}, "networks": scan},
            "initial": {"steps": self.steps,
                        "grid": {"lam": self.ic_lams, "k0": self.ic_k0, "init": self.ic_inits},
                        "networks": one[: self.ic_networks]},
            "tolerance": {"steps": self.steps, "grid": {"tolerance": self.taus},
                          "networks": one[: self.tol_networks]},
            # half decades between the scan's lambdas: the fixed-lambda curve the controller
            # is compared with at equal error
            "tol_fixed": {"steps": self.steps, "grid": {"lam": HALF_DECADES},
                          "networks": one[: self.tol_networks]},
            "noise": {"steps": self.steps,
                      "grid": {"lam": self.noise_lams, "noise": [0.0, *self.noise]},
                      "networks": one[:1]},
        }
        if self.strong_replicas:  # on r1's reference task when there is one (compared below)
            out["strong"] = {"steps": self.steps,
                             "grid": {"lam": self.strong_lams, "replicas": self.strong_replicas,
                                      "perturb": self.strong_perturb},
                             "networks": [first] if self.reference_rows else one[:1]}
        out = {k: v for k, v in out.items() if v["networks"]}
        if self.reference_rows:
            out["reference"] = {"grid": {"lam": DECADES, "steps": [100_000]}, "networks": [first],
                            "steps": 100_000}
            out["reference_k0"] = {"grid": {"lam": [0.0], "k0": [0.1, 0.01], "steps": [100_000]},
                               "networks": [first]}
            out["reference_short"] = {"grid": {"lam": [0.0, 1e-6], "steps": [2000, 20000]},
                                  "networks": [first]}
            out["reference_tol"] = {"grid": {"tolerance": [1e-3, 1e-4, 1e-6], "steps": [100_000]},
                                "networks": [first]}
        if self.board:
            base = {"board": self.board, "learning": BOARD_LEARNING,
                    "task": {"train_size": self.board_train_size}}
            out["board"] = {"steps": self.board_steps,
                            "grid": {"lam": self.board_lams, "seeds": self.board_seeds},
                            "networks": [{**base, "label": f"{self.board} nominal"},
                                         {**base, "label": f"{self.board} imperfect",
                                          "imperfect": True}]}
            if self.emulated_steps:
                out["emulated"] = {"steps": self.emulated_steps, "grid": {"lam": self.emulated_lams},
                                   "networks": [{"emulate": self.board,
                                                 "label": f"{self.board} emulated"}]}
            out["board_low"] = {"steps": self.board_steps,
                                "grid": {"lam": [0.0], "init": ["low"], "seeds": self.board_seeds},
                                "networks": out["board"]["networks"]}
        return out


def reference_networks(folder: str | Path, quick: bool, setting: str = "--reference") -> list[dict]:
    """The reference networks the report uses (r1 first), as sweep network entries.

    ``setting`` names the option or environment variable that gave ``folder`` in errors.
    """
    labels = ["r1", "r2"] if quick else ["r1", "r2", "r3", "r4", "r5", "r51"]
    return [{"file": str(reference_file(Path(folder), label, setting)), "label": label}
            for label in labels]


def generated_networks(quick: bool) -> list[dict]:
    specs = (["disordered:N=64,seed=1", "disordered:N=64,seed=2"] if quick else
             ["disordered:N=64,seed=1", "disordered:N=64,seed=2", "disordered:N=64,seed=3",
              "disordered:N=128,seed=1", "disordered:N=256,seed=1"])
    return [{"generate": s, "label": s.replace("disordered:", "").replace(",", " ")} for s in specs]


def default_plan(reference: str | Path | None = None, quick: bool = False, *,
                 generated: bool = False, environ: Mapping[str, str] | None = None) -> Plan:
    """The report's plan.

    The authors' reference networks from the folder ``reference`` or, when it is None, from
    ``$LEARNBOARD_REFERENCE`` (read from ``environ``, default the process environment);
    generated disordered networks when neither names a folder, or when ``generated``.
    """
    found = None if generated else reference_folder(reference, environ=environ)
    nets = reference_networks(found[0], quick, found[1]) if found else generated_networks(quick)
    plan = Plan(networks=nets, reference_rows=found is not None, quick=quick,
                source="reference" if found else "generated")
    if quick:
        plan.seeds, plan.candidate_seeds = 1, 3
        plan.ic_networks, plan.tol_networks = 1, 1
        plan.ic_k0, plan.ic_lams = [1.0, 0.1, 0.01], [0.0, 1e-6]
        plan.taus = [1e-3, 1e-4, 1e-6]
        plan.board_steps, plan.board_lams, plan.board_seeds = 100, [0.0, 0.05, 0.5], [0]
        plan.noise, plan.noise_lams = [0.01], [0.0, 1e-7, 1e-6]
        plan.emulated_steps = 60
        plan.strong_replicas = 10
        plan.gradient_steps = 300
    return plan
