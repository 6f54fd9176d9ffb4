"""The board's MicroPython firmware, shipped as package data so an installed copy can flash it.

This ``__init__`` is for the host only and is never copied to a board.
"""

from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parent
