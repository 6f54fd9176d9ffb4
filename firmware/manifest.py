# Freeze the firmware package into a MicroPython build (micropython-lib practice: freeze
# the package, keep a small main.py on the filesystem):
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Only lbfw is frozen. main.py and boot.py stay on the board's filesystem, where
# `learnboard flash` replaces them (a frozen main.py would win over the filesystem's and
# could no longer be replaced), and board.json is the board's own description.
# include() pulls in the board's default manifest (asyncio, ...); package() is provided
# by MicroPython's manifest tool.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821
package("lbfw")  # noqa: F821
