"""Runs before main.py: room for exception messages raised inside interrupts/locked heap."""

import micropython

# Ports without hard interrupts (the unix port, i.e. the emulator's VM) lack it.
if hasattr(micropython, "alloc_emergency_exception_buf"):
    micropython.alloc_emergency_exception_buf(100)
