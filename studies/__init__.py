"""Studies on top of the core, the host and the emulator: sweeps of learning runs
(:mod:`~learnboard.studies.sweep`), the paper's reproduction (:mod:`~learnboard.studies.paper`)
and the fault and safety campaigns (:mod:`~learnboard.studies.reliability`)."""
