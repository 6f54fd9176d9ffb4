"""A pure-Python emulator of a learning board: physics, devices, peripherals, serial port."""
