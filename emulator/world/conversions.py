"""ADC conversions: what the firmware's ``ADC.read_u16`` returns, one at a time or in blocks.

:class:`Conversions` (a part of ``World``) routes an ADC input through its muxes (gain,
settling, contention) to the node or gate they select and converts it with the ADC
model (noise, INL/DNL). A conversion is always the same arithmetic, however it is asked
for; what differs is how much of it can be done for a whole block at once:

* :meth:`~Conversions.adc_block` of one connected mux while nothing moves (the usual
  node read): the mux's settling law and the block's noisy conversions in one kernel
  call (:func:`learnboard.emulator.world.kernels.block_codes`);
* while drives settle on a linear (digipot) network: the node volts of each sample from
  the network's linear map of the drive volts (:meth:`~Conversions._block_linear`);
* everything else (gates moving, several muxes on one input, a dead input): the
  sources sample by sample, each converted by :meth:`~Conversions.adc_read_u16`'s rule.

The firmware's own read loop (``firmware/lbfw/hal.py``) is the only copy of the scan:
the emulator answers its ``ADC.read_u16`` calls, in process from blocks
(``machine_layer``) and in the VM from blocks or a run-ahead script (``read_ahead``);
neither repeats the loop.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
from learnboard.emulator.devices.spi_adc import SpiAdc
from learnboard.emulator.world.kernels import block_codes, settle_block

from learnboard.errors import InputError

RP2040_TEMP_CHANNEL = 4
RP2040_TEMP_VOLTS = 0.706  # sensor at 27 °C (RP2040 datasheet)


class Conversions:
    """The ADC side of ``World``."""

    def _build_conversions(self) -> None:
        b = self.board
        # per ADC input (external ADCs have more), its muxes as (mux, routes, net):
        # routes[channel] is what the channel selects on network net — (True, node),
        # (False, edge) for a gate read-back, or None (not wired: reads 0 V)
        self._adc_mux: dict[int, list] = {}
        for name, m in b.muxes.items():
            mux = self.muxes[name]
            routes = tuple(_route(m.nodes, m.gates, ch) for ch in range(1 << mux.n_select))
            self._adc_mux.setdefault(m.adc_channel, []).append((mux, routes, m.net))
        self._kpow: dict = {}
        self._quiet = self._cache.quiet  # (bound once: the hot path's two questions)
        self._kept_volts = self._cache.node_volts
        # raw code -> what ADC.read_u16 returns (the code scaled to 16 bits, its top bits
        # replicated below as MicroPython's rp2 port does)
        sh = 16 - self.adc.bits
        self._u16_of_code = [((c << sh) | (c >> (self.adc.bits - sh))) & 0xFFFF if sh > 0
                             else c for c in range(len(self.adc._t_list) + 1)]
        self._u16_array = np.array(self._u16_of_code, dtype=np.int64)
        self._zero_arrays: dict = {}
        self._code_arrays: dict = {}  # n -> a block's code buffer (read out as a list)

    def _build_read_parts(self) -> None:
        """Parts that answer reads: an SPI ADC on MISO (the I2C current monitors are the
        solution's: their shunts act on it)."""
        b = self.board
        self.spi_adc = None
        if b.adc.type == "spi":
            self.spi_adc = SpiAdc(b.adc.bits, b.adc.channels, self._adc_code)
            self._gpio(b.adc.cs, lambda lv, now, a=self.spi_adc: a.select(not lv))

    # ------------------------------------------------------------------ one conversion
    def _adc_code(self, channel: int) -> int:
        """One raw conversion of ADC input ``channel`` (an external ADC's)."""
        return self.adc.code(self.adc_input_volts(channel), self.faults.noise_scale)

    def adc_read_u16(self, channel: int) -> int:
        """One conversion of ADC input ``channel``, as ``machine.ADC.read_u16`` returns it."""
        if not 0 <= channel <= RP2040_TEMP_CHANNEL:
            _no_channel(channel)
        code = self.adc.read_u16(self.adc_input_volts(channel), self.faults.noise_scale)
        self.clock.advance_us(2)  # 500 kS/s
        return code

    def _adc_sources(self, channel: int) -> list:
        """(mux, source volts) of every enabled mux on ADC input ``channel``."""
        out = []
        for mux, routes, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            r = routes[mux._channel]
            src = 0.0 if r is None else self._node_volts(net, r[1]) if r[0] else \
                self._gate_volts(net, r[1])
            out.append((mux, src))
        return out

    def _adc_volts(self, channel: int, sources: list, now: int) -> float:
        if not sources:
            return RP2040_TEMP_VOLTS if channel == RP2040_TEMP_CHANNEL else 0.0
        volts = [mux.output(src, now) for mux, src in sources]
        return min(max(sum(volts) / len(volts), 0.0), self.adc.vref)  # contention averages

    def adc_input_volts(self, channel: int) -> float:
        """Volts at ADC input ``channel`` now (mux, front-end gain and settling included)."""
        if channel in self.faults.dead_adc:
            return 0.0
        return self._adc_volts(channel, self._adc_sources(channel), self.clock._us)

    # ------------------------------------------------------------------ blocks
    def adc_block(self, channel: int, n: int, period_us: int = 2) -> list[int]:
        """``n`` conversions of input ``channel``, ``period_us`` apart (2: back to back at
        500 kS/s), as ``machine.ADC.read_u16`` returns them: the same codes, clock and
        device state as ``n`` :meth:`adc_read_u16` calls with ``period_us - 2`` µs of
        other work after each (the emulated ``machine``'s reads are answered from these
        blocks). While outputs settle or gates move, the sources are taken per sample;
        otherwise once (only gate leakage, ~1e-9 V per block, is left out), while mux
        settling, noise and non-linearity act per sample."""
        if not 0 <= channel <= RP2040_TEMP_CHANNEL:
            _no_channel(channel)
        period = max(2, int(period_us))
        if n < 1:
            return []
        dead = channel in self.faults.dead_adc
        if dead:
            return self._block_sources(channel, n, period, dead)
        if self._quiet(self.clock._us):
            codes = self._block_one_mux(channel, n, period)
            return codes if codes is not None else \
                self._block_sources(channel, n, period, dead)
        # drives settling or gates moving: the sources change from sample to sample,
        # so take them per sample exactly as single reads do
        if not self._active_gates and not self._dac_gates:
            out = self._block_linear(channel, n, period)
            if out is not None:
                return out
        out = []
        clock = self.clock
        for _ in range(n):
            out.append(self.adc_read_u16(channel))
            if period > 2:
                clock.advance_us(period - 2)
        return out

    def _codes(self, a0: float, b0: float, kp, n: int, sig: float) -> list[int]:
        """The u16 codes of ``n`` conversions at ``a0 + b0 kp[i]`` input LSB, each with
        its noise (``sig`` LSB rms) from the ADC's stream; ``sig`` 0: noise off (no
        deviate used)."""
        adc = self.adc
        if sig:
            if adc._zi + n > len(adc._za):
                adc.ahead(n)  # draws the next block of deviates
            out = self._code_arrays.get(n)
            if out is None:
                out = self._code_arrays[n] = np.empty(n, dtype=np.int64)
            zi = adc._zi
            block_codes(adc.transitions, self._u16_array, a0, b0, kp, adc._za, zi, sig, out)
            adc._zi = zi + n  # AdcModel.skip
            return out.tolist()
        u16, t = self._u16_of_code, adc._t_list
        if not b0:
            return [u16[bisect_right(t, a0)]] * n
        return [u16[bisect_right(t, a0 + b0 * k)] for k in kp]

    def _block_one_mux(self, channel: int, n: int, period: int) -> list[int] | None:
        """:meth:`adc_block`'s usual case (nothing moving): one mux connected to the
        input, settled, or settling inside the ADC's range. None (nothing changed)
        otherwise. The hot path of every node read: the mux's output law
        (``AnalogMux.output``) is inline."""
        found = None
        for entry in self._adc_mux.get(channel, ()):
            if entry[0].is_connected:
                if found is not None:
                    return None
                found = entry
        if found is None:
            return None
        adc = self.adc
        mux, routes, net = found
        r = routes[mux._channel]
        now = self.clock._us
        if r is None:
            src = 0.0
        elif r[0]:
            volts = self._kept_volts(net, now)
            src = volts[r[1]] if volts is not None else self._node_volts(net, r[1])
        else:
            src = self._gate_volts(net, r[1])
        tau = mux.tau_us
        target = src * mux.gain
        k = math.exp(-(now - mux._channel_since) / tau) if tau > 0 else 0.0
        out = target + (mux._out - target) * k
        vref = adc.vref
        ns = self.faults.noise_scale
        sig = adc.noise_lsb * ns if adc.noise_lsb and ns else 0.0
        if n > 1 and not abs(out - target) < 1e-9:  # still settling (the usual case)
            if not (tau > 0 and 0.0 <= out <= vref and 0.0 <= target <= vref):
                return None
            a0 = target / adc._lsb * adc._g1 + adc.offset_lsb
            b0 = (out - target) * (adc._g1 / adc._lsb)
            kp = self._kpow.get((tau, n, period, "a"))
            if kp is None:
                kp = self._kp_array(tau, n, period)
        else:
            a0 = min(max(out, 0.0), vref) / adc._lsb * adc._g1 + adc.offset_lsb
            b0 = 0.0
            kp = self._zero_arrays.get(n)
            if kp is None:
                kp = self._zeros(n)
        codes = self._codes(a0, b0, kp, n, sig)
        if n > 1:  # the mux's state at the last conversion (AnalogMux.output, inline)
            dt = period * (n - 1)
            k = math.exp(-dt / tau) if tau > 0 else 0.0
            mux._out = target + (out - target) * k
            mux._channel_since = now + dt
        else:
            mux._out = out
            mux._channel_since = now
        self.clock.advance_int(period * n)
        return codes

    def _block_sources(self, channel: int, n: int, period: int, dead: bool) -> list[int]:
        """:meth:`adc_block` while nothing moves, for an input with several muxes, none,
        a dead one, or one mux settling from outside the ADC's range: settled, one
        conversion plan for the block; else the sources per sample."""
        adc = self.adc
        ns = self.faults.noise_scale
        now = self.clock._us
        sources = [] if dead else self._adc_sources(channel)
        v0 = 0.0 if dead else self._adc_volts(channel, sources, now)
        if n > 1 and sources:
            settled = all(abs(mux._out - src * mux.gain) < 1e-9 for mux, src in sources)
        else:
            settled = True
        if settled:
            x = v0 / adc._lsb * adc._g1 + adc.offset_lsb
            sig = adc.noise_lsb * ns if adc.noise_lsb and ns else 0.0
            codes = self._codes(x, 0.0, self._zeros(n), n, sig)
            if sources and n > 1:
                self._adc_volts(channel, sources, now + period * (n - 1))  # the muxes' state
        else:
            u16 = self._u16_of_code
            codes = []
            for i in range(n):
                v = v0 if i == 0 else self._adc_volts(channel, sources, now + period * i)
                codes.append(u16[adc.code(v, ns)])
        self.clock.advance_int(period * n)
        return codes

    def _block_linear(self, channel: int, n: int, period: int):
        """:meth:`adc_block` while drives settle on linear (digipot) networks (see
        :meth:`_block_linear_eager`, the reference). With lazy solves (the default) the
        usual case — one connected mux reading a node — is taken in one compiled pass
        (:func:`~learnboard.emulator.world.kernels.settle_block`): the same per-sample
        re-solves from the network's linear map, the same codes, clock and solve
        bookkeeping, without a Python loop per sample."""
        if self._eager_solves:
            return self._block_linear_eager(channel, n, period)
        found = None
        for entry in self._adc_mux.get(channel, ()):
            if entry[0].is_connected:
                if found is not None:  # contention: several sources per sample
                    return self._block_linear_eager(channel, n, period)
                found = entry
        if found is None:
            return None
        mux, routes, net = found
        r = routes[mux._channel]
        clock = self.clock
        if r is None or not r[0] or not clock.quiet_through(clock._us + period * n):
            # an unwired channel or a gate read: the reference. So too when a clock
            # listener would act inside the block (the watchdog running out, a brown-out:
            # the board resets between two samples — in process an exception at that
            # sample —, which only the sample-by-sample loop reproduces)
            return self._block_linear_eager(channel, n, period)
        op = self._linear_map(net)
        if op is None:
            return None
        return self._settle_block(op, mux, net, r[1], n, period)

    def _settle_block(self, op, mux, net: int, node: int, n: int, period: int) -> list[int]:
        """:meth:`_block_linear_eager` for one mux on ``node`` of ``net`` whose linear map
        ``op`` is ready, in one call of the compiled kernel; the state it leaves (mux,
        noise stream, solve bookkeeping, clock) written back here. The clock's listeners
        are quiet through the block (the caller checked)."""
        clock = self.clock
        adc = self.adc
        cache = self._cache
        faults = self.faults
        ns = faults.noise_scale
        now = clock._us
        _p_state, p_drives, sol = cache.solved[net]
        keys = op[4]  # sorted(p_drives): the op is the one of these driven nodes
        nk = len(keys)
        chk = cache.checked[net]
        noisy = bool(adc.noise_lsb and ns)
        vals = [1.0 if chk is not None and chk[0] == cache.gen else 0.0,
                chk[1] if chk is not None else 0.0, cache.solved_at[net], cache.dynamic_until,
                1.0 if len(faults.stuck_edges) == len(self._stuck_values) else 0.0,
                cache.max_leak, faults.leak_scale, cache.tol,
                0.0 if sol is None else 1.0, 0.0 if sol is None else sol.node_voltages[node],
                now, period, mux.gain, mux.tau_us, mux._out, mux._channel_since,
                adc._lsb, adc._g1, adc.offset_lsb, adc.noise_lsb, ns, adc.vref, 0.0, 0.0]
        vals += [p_drives[k] for k in keys]
        outs = op[3]
        vals += [o._to[ch] for o, ch in outs]
        vals += [o._from[ch] for o, ch in outs]
        vals += [o._since[ch] for o, ch in outs]
        vals += [o.tau_us for o, _ in outs]
        sc = np.array(vals, dtype=float)
        if noisy and adc._zi + n > len(adc._za):
            adc.ahead(n)  # the next deviates of the stream, as AdcModel.code draws them
        z0 = adc._zi
        out = self._code_arrays.get(n)
        if out is None:
            out = self._code_arrays[n] = np.empty(n, dtype=np.int64)
        settle_block(op[2][node], sc, nk, adc.transitions, self._u16_array, adc._za, z0, out)
        if noisy:
            adc._zi = z0 + n
        r = sc.tolist()
        mux._out = r[14]
        mux._channel_since = int(r[15])
        solves = int(r[22])
        if r[23]:
            cache.checked[net] = (cache.gen, int(r[1]))
        if solves:
            cache.solves += solves
            cache.solved_at[net] = int(r[2])
            cache.owe(net, dict(zip(keys, r[24:24 + nk], strict=True)))
        # every listener's call for the samples' times would be a no-op (quiet_through)
        clock._us = now + period * n
        return out.tolist()

    def _block_linear_eager(self, channel: int, n: int, period: int):
        """:meth:`adc_block` while drives settle on linear (digipot) networks: what ``n``
        :meth:`adc_read_u16` calls give — :meth:`solution`'s bookkeeping per sample (a
        re-solve whenever a drive moved by more than 1e-7 V since the last one) — with
        each re-solve's node volts from the network's linear map of the drive volts
        (the same solution to rounding) instead of a factorised solve; the full solution
        of the last one is completed only if asked for (:meth:`_sol`). None where it
        does not apply (then the caller reads sample by sample). ``period``: µs from one
        conversion to the next."""
        srcs = []
        nets = {}
        for mux, routes, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            r = routes[mux._channel]
            if r is None:
                srcs.append((mux, None, 0))
            elif r[0]:
                if net not in nets:
                    op = self._linear_map(net)
                    if op is None:
                        return None
                    nets[net] = op
                srcs.append((mux, net, r[1]))
            else:
                return None
        if not nets:
            return None
        clock = self.clock
        adc = self.adc
        cache = self._cache
        ns = self.faults.noise_scale
        vref = adc.vref
        u16 = self._u16_of_code
        listeners = clock._listeners  # a watchdog checks every advance
        # per network: [rows, drive getters, drive volts of the last solve, {node: volts},
        # moved]
        st = {}
        for net, (rows, lines, *_) in nets.items():
            p_drives = cache.solved[net][1]
            sol = cache.solved[net][2]
            st[net] = [rows, lines, [p_drives[k] for k in sorted(p_drives)],
                       None if sol is None else sol.node_voltages, False]
        codes = []
        for _ in range(n):
            now = clock._us
            for net, s in st.items():
                if cache.holds(net, now):
                    continue  # solution(): the cached solve holds
                vals = [volts_at(now) for volts_at in s[1]]
                if all(abs(p - v) <= 1e-7 for p, v in zip(s[2], vals, strict=True)):
                    cache.confirm(net)
                    continue
                s[2] = vals
                s[3] = None
                s[4] = True
                cache.count_solve(net, now)
            acc = 0.0
            for mux, net, node in srcs:
                if net is None:
                    v = 0.0
                else:
                    s = st[net]
                    volts = s[3]
                    if volts is None:
                        volts = s[3] = {}
                    if isinstance(volts, dict):
                        v = volts.get(node)
                        if v is None:
                            v = volts[node] = sum([a * d for a, d in zip(s[0][node], s[2],
                                                                          strict=True)])
                    else:
                        v = volts[node]
                acc += mux.output(v, now)
            codes.append(u16[adc.code(min(max(acc / len(srcs), 0.0), vref), ns)])
            if listeners:
                clock.advance_us(period)  # 500 kS/s back to back
            else:
                clock._us += period
        for net, s in st.items():
            if s[4]:  # the last re-solve, completed by _sol() when asked for
                cache.owe(net, dict(zip(sorted(cache.solved[net][1]), s[2], strict=True)))
        return codes

    def _zeros(self, n: int):
        z = self._zero_arrays.get(n)
        if z is None:
            z = self._zero_arrays[n] = np.zeros(n)
        return z

    def _kp_array(self, tau_us: float, n: int, period_us: int):
        key = (tau_us, n, period_us, "a")
        kp = self._kpow.get(key)
        if kp is None:
            kp = self._kpow[key] = np.array(self._settle_powers(tau_us, n, period_us))
        return kp

    def _settle_powers(self, tau_us: float, n: int, period_us: int = 2) -> list[float]:
        """exp(-period i µs / tau) for i < n (cached)."""
        key = (tau_us, n, period_us)
        kp = self._kpow.get(key)
        if kp is None:
            kp = self._kpow[key] = [math.exp(-float(period_us) * i / tau_us) for i in range(n)]
        return kp

    def reads_undoable(self) -> bool:
        """Whether reads now change only what :meth:`restore_read_state` undoes, as far
        as the state of the outputs and gates tells (:meth:`block_is_cached` then says
        it per block): nothing moves, or — with lazy solves — drives settle on a board of
        linear networks without moving gates (re-solved from their linear maps)."""
        return self._cache.quiet(self.clock._us) or (
            self._linear_board and not self._eager_solves and not self._active_gates and
            not self._dac_gates)

    def block_is_cached(self, channel: int, n: int, period_us: int = 2) -> bool:
        """Whether :meth:`adc_block` on ``channel`` now would take every node it reads
        from the kept solves or, while drives settle (lazy solves), from the linear map
        of an unchanged circuit (no new solve by a solver): the world server runs such
        reads ahead."""
        now = self.clock._us
        end = now + max(2, int(period_us)) * n
        settling = None
        for mux, routes, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            r = routes[mux._channel]
            if r is not None and r[0] and self._cache.node_volts(net, end) is None:
                if settling is None:  # adc_block's choice: _block_linear
                    settling = self._linear_board and not self._quiet(now) and \
                        not self._eager_solves and not self._active_gates and \
                        not self._dac_gates
                if not settling or self._linear_ready(net) is None:
                    return False
        return True


def _route(nodes: tuple, gates: tuple, ch: int) -> tuple[bool, int] | None:
    """What mux channel ``ch`` selects: (True, node), (False, edge) or None. The board
    format marks a channel that is not wired with -1."""
    if nodes and ch < len(nodes) and nodes[ch] >= 0:
        return (True, nodes[ch])
    if gates and ch < len(gates) and gates[ch] >= 0:
        return (False, gates[ch])
    return None


def _no_channel(channel: int) -> None:
    raise InputError(f"ADC channel {channel} does not exist (0..4 on the RP2040)",
                     field="adc")
