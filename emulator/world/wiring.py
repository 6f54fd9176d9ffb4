"""Wiring and buses: which part hears which pin, SPI or I2C transfer.

:class:`Wiring` (a part of ``World``) connects the microcontroller's pins and the
expanders' latched outputs to the parts that listen on them (mux selects, chain latches,
DAC and digipot selects, X9C lines, gate switches) and dispatches SPI and I2C traffic to
the parts on each bus. Every write that changes the circuit moves the solve cache's
actuation generation; mux select lines do not (a read is not an actuation).
"""

from __future__ import annotations

from functools import partial

from learnboard.emulator.devices import AnalogMux

from learnboard.boards import Line
from learnboard.boards.schema import PulseGateDriver, X9cDriver


class Wiring:
    """Pin and bus dispatch of ``World``."""

    def _watch_line(self, line: Line, callback) -> None:
        if not line.device:
            self._gpio_watch.setdefault(line.index, []).append(callback)
        else:
            self._line_watch.setdefault(line.device, {}).setdefault(line.index, []).append(
                (line, callback))
            self._line_levels[line] = self.line_level(line)

    def _build_watches(self) -> None:
        b = self.board
        shared: dict = {}  # (gpio, bit) -> the muxes on that select line, one callback
        for name, m in b.muxes.items():
            for bit, gpio in enumerate(m.select):
                shared.setdefault((gpio, bit), []).append(self.muxes[name])
        for name, m in b.muxes.items():
            mux = self.muxes[name]
            for bit, gpio in enumerate(m.select):
                group = shared[(gpio, bit)]
                if group[0] is mux:  # cb(level, now)
                    bank = all(b.muxes[n].select == m.select for n, other in self.muxes.items()
                               if other in group)
                    self._gpio(gpio, partial(AnalogMux.set_select_bank if bank else
                                             AnalogMux.set_select_all, tuple(group), bit))
            if m.enable is not None:
                self._gpio(m.enable, mux.set_enable)  # cb(level, now)
        for name, x in b.expanders.items():
            chain = self.chains[name]
            def latch(lv, now, c=chain, n=name):
                old = c.latched
                if c.set_latch(lv):
                    self._lines_changed(n, old ^ c.latched)
            self._gpio(x.latch, latch)
            if x.oe is not None:
                self._gpio(x.oe, lambda lv, now, c=chain, n=name: (c.set_oe(lv),
                                                                   self._lines_changed(n)))
        for name, d in b.dacs.items():
            if d.interface == "spi" and d.cs is not None:
                self._gpio(d.cs, lambda lv, now, dac=self.dacs[name]: dac.select(not lv, now))
        for (_bus, cs), pot in self._spi_pots.items():
            self._watch_line(cs, lambda lv, now, p=pot: p.select(not lv, now))
        banks: dict = {}  # (line, "ud" | "inc") -> the X9C parts sharing it
        for net in range(b.n_nets):
            for i, e in enumerate(b.edges):
                drv = e.drivers[net] if e.drivers else None
                dev = self.edges[net][i]
                if isinstance(drv, X9cDriver):
                    self._watch_line(drv.cs, dev.set_cs)  # cb(level, now)
                    # U/D and INC are usually shared by every X9C (each has its own CS):
                    # one callback per line walks its parts (the bank's place in the
                    # line's callbacks is its first part's)
                    for line, what in ((drv.ud, "ud"), (drv.inc, "inc")):
                        bank = banks.get((line, what))
                        if bank is None:
                            bank = banks[(line, what)] = []
                            self._watch_line(line, partial(
                                _x9c_ud_bank if what == "ud" else _x9c_inc_bank, bank))
                        bank.append(dev)
                elif isinstance(drv, PulseGateDriver):
                    chain = drv.charge.device
                    if chain and chain == drv.discharge.device:  # read from the latch word
                        by_bit = self._chain_gates.setdefault(chain, {})
                        for bit in (drv.charge.index, drv.discharge.index):
                            by_bit.setdefault(bit, []).append(
                                (dev, drv.charge.index, drv.discharge.index))
                        continue
                    switches = partial(self._gate_switches, dev,
                                       self._level_getter(drv.charge),
                                       self._level_getter(drv.discharge))
                    self._watch_line(drv.charge, switches)
                    self._watch_line(drv.discharge, switches)

    def _level_getter(self, line: Line):
        """``level()`` of a digital line, as :meth:`line_level` gives it."""
        if not line.device:
            return partial(self.pins.get, line.index, 0)
        return partial(self.chains[line.device].output, line.index)

    def _gpio(self, gpio: int, callback) -> None:
        self._gpio_watch.setdefault(gpio, []).append(callback)

    def _lines_changed(self, chain: str | None = None, bits: int | None = None) -> None:
        """Deliver changed expander lines (of ``chain``, or all; only ``bits`` if given)."""
        now = self.clock.now_us
        self._cache.gen += 1
        if chain is None:
            for name in self._chain_gates:
                self._switch_chain_gates(name, None, now)
        elif chain in self._chain_gates:
            self._switch_chain_gates(chain, bits, now)
        if bits is not None and chain is not None:  # a latch: only the bits that changed
            by_bit = self._line_watch.get(chain)
            if not by_bit:
                return
            latched = self.chains[chain].output_word()  # (no callback changes it)
            levels = self._line_levels
            while bits:
                low = bits & -bits
                bits ^= low
                group = by_bit.get(low.bit_length() - 1)
                if group:
                    lv = 1 if latched & low else 0
                    for line, cb in group:
                        if lv != levels[line]:
                            levels[line] = lv
                            cb(lv, now)
            return
        chains = self._line_watch.values() if chain is None else [self._line_watch.get(chain, {})]
        watches = []
        for by_bit in chains:
            if bits is None:
                watches.extend(w for group in by_bit.values() for w in group)
            else:
                while bits:
                    low = bits & -bits
                    watches.extend(by_bit.get(low.bit_length() - 1, ()))
                    bits ^= low
        for line, cb in watches:
            lv = self.line_level(line)
            if lv != self._line_levels[line]:
                self._line_levels[line] = lv
                cb(lv, now)

    # ------------------------------------------------------------------ pins
    def line_level(self, line: Line) -> int:
        """Level of a digital line: a GPIO, or an expander bit as latched (OE honoured)."""
        if not line.device:
            return self.pins.get(line.index, 0)
        return self.chains[line.device].output(line.index)

    def set_pin(self, gpio: int, level: int) -> None:
        """Drive GPIO ``gpio`` to ``level`` (truthy: high); the parts listening hear a change."""
        level = 1 if level else 0
        if self.pins.get(gpio) != level:
            self.pin_changed(gpio, level)

    def pin_changed(self, gpio: int, level: int) -> None:
        """:meth:`set_pin` for a level (0 or 1) that differs from the pin's."""
        self.pins[gpio] = level
        if gpio not in self._mux_pins:
            self._cache.gen += 1
        cbs = self._gpio_watch.get(gpio)
        if cbs:
            now = self.clock._us
            for cb in cbs:
                cb(level, now)

    # ------------------------------------------------------------------ buses
    def spi_write(self, bus_id: int, data: bytes, baud: int) -> None:
        """Bytes clocked out on SPI peripheral ``bus_id``; each part listens if selected."""
        now = self.clock._us
        self._cache.actuated(now, self._out_settle_us)
        parts = self._spi_parts.get(bus_id)
        if parts is None:  # (write, takes the time) of every part on the bus, in order
            parts = []
            for name, bus in self.board.spi.items():
                if bus.id != bus_id:
                    continue
                for xn, x in self.board.expanders.items():
                    if x.bus == name:
                        parts.append((self.chains[xn].spi_write, False))
                for dn, d in self.board.dacs.items():
                    if d.interface == "spi" and d.bus == name:
                        parts.append((self.dacs[dn].spi_write, True))
                for (pbus, _), pot in self._spi_pots.items():
                    if pbus == name:
                        parts.append((pot.spi_write, True))
            parts = self._spi_parts[bus_id] = tuple(parts)
        for write, timed in parts:
            if timed:
                write(data, now)
            else:
                write(data)
        self.clock.advance_us(len(data) * 8e6 / max(1, baud))

    def spi_transfer(self, bus_id: int, data: bytes, baud: int) -> bytes:
        """A full-duplex SPI transfer: the bytes on MOSI reach every part (as
        :meth:`spi_write`), MISO carries what a selected SPI ADC on the bus sends."""
        miso = bytes(len(data))
        if self.spi_adc is not None and self.board.spi[self.board.adc.bus].id == bus_id:
            miso = self.spi_adc.transfer(data)
        self.spi_write(bus_id, data, baud)
        return miso

    def i2c_write(self, bus_id: int, addr: int, data: bytes) -> bool:
        """An I2C write; False when no part answers (NACK). I2C DACs take the same
        16-bit words as the SPI DAC model."""
        mon = self._monitor(bus_id, addr)
        if mon is not None:
            mon.write(bytes(data))  # a monitor: no actuation
            return True
        now = self.clock.now_us
        self._cache.actuated(now, self._out_settle_us)
        for dn, d in self.board.dacs.items():
            if d.interface == "i2c" and d.address == addr and self.board.i2c[d.bus].id == bus_id:
                dac = self.dacs[dn]
                dac.select(True, now)
                dac.spi_write(bytes(data), now)
                dac.select(False, now)
                return True
        return False

    def _monitor(self, bus_id: int, addr: int):
        """The current monitor at ``addr`` on I2C peripheral ``bus_id``, or None."""
        for cs, mon in zip(self.board.current_sense, self.monitors, strict=True):
            if cs.address == addr and self.board.i2c[cs.bus].id == bus_id:
                return mon
        return None

    def i2c_read(self, bus_id: int, addr: int, n: int) -> bytes | None:
        """An I2C read of ``n`` bytes; None when no part answers (NACK)."""
        mon = self._monitor(bus_id, addr)
        if mon is not None:
            return mon.read(n)
        if addr in self.i2c_addresses(bus_id):
            return bytes(n)
        return None

    def i2c_addresses(self, bus_id: int) -> list[int]:
        """The addresses that acknowledge on I2C peripheral ``bus_id`` (``I2C.scan``)."""
        sense = [cs.address for cs in self.board.current_sense
                 if self.board.i2c[cs.bus].id == bus_id]
        return sorted([d.address for d in self.board.dacs.values()
                       if d.interface == "i2c" and self.board.i2c[d.bus].id == bus_id] + sense)


def _x9c_ud_bank(parts: list, level: int, now: int) -> None:
    """``X9cDigipot.set_ud(level, now)`` of every part on one U/D line, inline."""
    ud = 1 if level else 0
    for d in parts:
        d.ud = ud


def _x9c_inc_bank(parts: list, level: int, now: int) -> None:
    """``X9cDigipot.set_inc(level, now)`` of every part on one INC line: a part that is
    not selected, or sees no falling edge, only takes the level (what set_inc does for
    it, inline); a selected part on a falling edge runs set_inc itself."""
    lv = 1 if level else 0
    for d in parts:
        if lv == 0 and d.inc == 1 and d.cs == 0:
            d.set_inc(0, now)
        else:
            d.inc = lv
