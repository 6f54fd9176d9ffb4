"""Runs before main.py: room for exception messages raised inside interrupts/locked heap."""

import micropython

micropython.alloc_emergency_exception_buf(100)
