"""learnboard firmware package (MicroPython)."""
