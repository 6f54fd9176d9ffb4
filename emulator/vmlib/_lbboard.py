"""Board-level services of the emulator for code in the VM (MicroPython side).

``reset()`` is the hard reset: the VM exits with a status the virtual serial port
recognises (``learnboard.emulator.vm.HARD_RESET_EXIT``), and the port kills the state,
boots a fresh VM and runs boot.py then main.py. A ``machine.py`` that extends the
built-in module should take ``reset`` from here.
"""

HARD_RESET_EXIT = 211  # keep equal to learnboard.emulator.vm.HARD_RESET_EXIT


def reset():
    """Hard reset of the virtual board; does not return."""
    raise SystemExit(HARD_RESET_EXIT)
