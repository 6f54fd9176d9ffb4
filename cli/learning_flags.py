"""The learning parameters' help, shared by ``learnboard sim`` and ``learnboard train`` so
both describe ``--alpha``, ``--eta`` and ``--lambda`` in the same words (the paper's
meanings, which are also those of board files, schedule files and the board protocol)."""

from __future__ import annotations

RULE = "dk = -(alpha/eta) <(dV^C)^2 - (1 - lambda)(dV^F)^2>"
ALPHA_HELP = f"learning rate alpha of the rule {RULE}"
ETA_HELP = "nudge amplitude eta in (0, 1]: clamped output = free + eta (target - free)"
LAMBDA_HELP = "power weight lambda (0 = plain coupled learning)"
# `learnboard train` 0.1.0 had alpha and eta the other way round; its --help says so.
TRAIN_BREAKING = ("Breaking change since 0.1.0: --alpha is the learning rate and --eta the nudge\n"
                  "(0.1.0 had them the other way round); a schedule file that sets alpha or eta\n"
                  "needs version = 2 (see CHANGELOG.md).")
