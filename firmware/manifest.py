# Freeze the firmware into a MicroPython build (micropython-lib style manifest):
#   make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
# board.json stays on the board's filesystem (it is the board's own description).
# package() and module() are provided by MicroPython's manifest tool.
package("lbfw")  # noqa: F821
module("boot.py")  # noqa: F821
module("main.py")  # noqa: F821
