"""learnboard: software for microcontroller-driven self-learning circuit boards."""

__version__ = "0.1.0"
