"""Fallback ``machine`` for the emulator's VM: the built-in module plus ``reset()``.

The emulated ``machine`` layer (devices, pins, ADC, ...) comes first on the VM's path
when the emulator is given it (``extra_path``) and shadows this file.
"""

from _lbboard import reset  # noqa: F401
from umachine import *  # noqa: F403
