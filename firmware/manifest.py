# Freeze the firmware into a MicroPython build (micropython-lib style manifest):
#   make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
# board.json stays on the board's filesystem (it is the board's own description).
package("lbfw")
module("boot.py")
module("main.py")
