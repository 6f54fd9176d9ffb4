"""``python -m learnboard.cli``: the same as ``learnboard``."""

from learnboard.cli import main

raise SystemExit(main())
