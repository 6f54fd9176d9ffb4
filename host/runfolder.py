"""A run folder: everything one training session leaves behind.

::

    runs/20261128-171502-xor/
        config.json          the resolved configuration (flags + schedule file + defaults)
        board.toml           the board description the session ran on (+ board.json compiled)
        calibration.json     the board's calibration, when there is one
        telemetry.msgpack    append-only telemetry log (learnboard.host.runlog)
        checkpoints/         step-00001200.json: edge states and schedule state
        summary.json         the final summary (what `train --json` prints)
        figures/             PNGs written by `learnboard plot`

JSON files are written atomically (temporary file, fsync, rename), so a crash leaves
either the old or the new version, never half of one.

config.json, summary.json and each checkpoint carry ``version`` (:data:`FORMAT`). Version 1
(a file without ``version``) is what learnboard 0.1.0 wrote: there ``alpha`` is the nudge
and ``eta`` the learning rate. :meth:`RunFolder.read_config` returns the configuration in
the current meanings (``alpha`` the learning rate, ``eta`` the nudge) whatever the file's
version, so an old run resumes with the values it was trained with.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from learnboard.errors import InputError, LearnboardError

from .records import CRC, json_crc_ok, seal_json
from .runlog import _disk_message
from .schemas import read_json

__all__ = ["FORMAT", "RunFolder", "config_in_current_meaning", "file_version", "read_json",
           "write_bytes_atomic", "write_json_atomic"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
FORMAT = 2  # run-folder format: 2 = alpha is the learning rate, eta the nudge (the paper's)
_SWAPPED = (("alpha", "eta"), ("alpha_to", "eta_to"))  # version 1 had these the other way round


def _swap_alpha_eta(d: dict) -> dict:
    """``d`` with its alpha/eta (and alpha_to/eta_to) values exchanged."""
    out = dict(d)
    for a, b in _SWAPPED:
        va, vb = d.get(a), d.get(b)
        out.pop(a, None)
        out.pop(b, None)
        if b in d:
            out[a] = vb
        if a in d:
            out[b] = va
    return out


def file_version(data: dict, source: str) -> int:
    """The run-folder format ``data`` (a config, summary or checkpoint) was written in:
    1 when it has no ``version``; an InputError for one this learnboard cannot read."""
    v = data.get("version", 1)
    if isinstance(v, bool) or v not in range(1, FORMAT + 1):
        raise InputError(f"version {v!r} is not a run-folder format this learnboard reads "
                         f"(1 to {FORMAT}); a newer learnboard wrote it: read it with that version",
                         source=source, field="version")
    return v


def config_in_current_meaning(config: dict, source: str = "config.json") -> dict:
    """A run's configuration with ``alpha`` the learning rate and ``eta`` the nudge, and
    ``version`` = :data:`FORMAT`: a version-1 file's values (alpha the nudge, eta the
    learning rate, in the top level and in each schedule phase) are exchanged."""
    if file_version(config, source) >= 2:
        return config
    out = _swap_alpha_eta(config)
    sched = out.get("schedule")
    if isinstance(sched, dict) and isinstance(sched.get("phases"), list):
        out["schedule"] = dict(sched, phases=[_swap_alpha_eta(p) if isinstance(p, dict) else p
                                              for p in sched["phases"]])
    out["version"] = FORMAT
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so a crash never leaves half a file."""
    text = json.dumps(data, indent=2, default=_jsonable, allow_nan=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (temporary file, fsync, rename): the old or the new file,
    never half of one. A full or read-only disk is a LearnboardError naming the file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise LearnboardError(_disk_message(path, exc, "the file")) from None


class RunFolder:
    """Paths and small helpers of one run folder; make one with :meth:`create` or :meth:`open`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunFolder:
        """A new folder ``<runs_dir>/<YYYYMMDD-HHMMSS>-<name>/`` with its subfolders."""
        if not _NAME.match(name or ""):
            raise InputError(f"run name {name!r} must be letters, digits, '.', '_' or '-'", field="--name")
        runs = Path(runs_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = runs / f"{stamp}-{name}"
        n = 1
        try:
            runs.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    n += 1
                    path = runs / f"{stamp}-{name}-{n}"
            rf = cls(path)
            rf.checkpoints_dir.mkdir()
            rf.figures_dir.mkdir()
        except OSError as exc:
            raise LearnboardError(f"{runs}: cannot create the run folder ({exc.strerror}); "
                                  "choose a writable place with --runs") from None
        return rf

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder (it must hold config.json)."""
        rf = cls(path)
        if not rf.path.is_dir():
            raise InputError("no such run folder", source=str(path))
        if not rf.config_path.is_file():
            raise InputError("not a run folder: config.json is missing", source=str(path))
        rf.checkpoints_dir.mkdir(exist_ok=True)
        rf.figures_dir.mkdir(exist_ok=True)
        return rf

    # -- paths -----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def board_path(self) -> Path:
        return self.path / "board.toml"

    @property
    def compiled_board_path(self) -> Path:
        return self.path / "board.json"

    @property
    def calibration_path(self) -> Path:
        return self.path / "calibration.json"

    @property
    def log_path(self) -> Path:
        return self.path / "telemetry.msgpack"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    # -- contents --------------------------------------------------------------------------

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.config_path, {**config, "version": FORMAT})

    def read_config(self) -> dict:
        """config.json in the current meanings (see :func:`config_in_current_meaning`);
        a file that is not a JSON object is returned as it is, for the caller to refuse."""
        data = read_json(self.config_path)
        if not isinstance(data, dict):
            return data
        return config_in_current_meaning(data, str(self.config_path))

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, {**summary, "version": FORMAT})

    def read_summary(self) -> dict | None:
        return read_json(self.summary_path) if self.summary_path.is_file() else None

    def write_board(self, board: Any) -> None:
        """Store the board description (its TOML source when there is one, and the
        compiled board.json the firmware runs)."""
        from learnboard.boards import compile_board

        src = Path(getattr(board, "source", "") or "")
        if src.is_file():
            try:
                source = src.read_bytes()
            except OSError as exc:
                raise LearnboardError(f"{src}: cannot read the board description: {exc.strerror}") from None
            write_bytes_atomic(self.board_path, source)
        write_bytes_atomic(self.compiled_board_path, compile_board(board).to_bytes())

    def write_calibration(self, calibration: dict | str | Path) -> None:
        """Store the board's calibration (a dict, or a file to copy)."""
        if isinstance(calibration, dict):
            write_json_atomic(self.calibration_path, calibration)
        else:
            try:
                data = Path(calibration).read_bytes()
            except OSError as exc:
                raise LearnboardError(f"{calibration}: cannot copy the calibration: {exc.strerror}") from None
            write_bytes_atomic(self.calibration_path, data)

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{int(step):09d}.json"

    def write_checkpoint(self, step: int, state: dict) -> Path:
        """Store a checkpoint (``state`` must be JSON-able: edge states, schedule state),
        with its checksum ``crc`` (:func:`~.records.seal_json`)."""
        path = self.checkpoint_path(step)
        write_json_atomic(path, seal_json({"step": int(step), **state, "version": FORMAT}, _jsonable))
        return path

    def checkpoints(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        return sorted(self.checkpoints_dir.glob("step-*.json"))

    def read_checkpoint(self, path: Path) -> tuple[dict | None, str]:
        """``(contents, "")`` for a good checkpoint file (``crc`` removed; one without a
        checksum, from an earlier learnboard, is taken as it is), ``(None, why)`` for a
        damaged one."""
        try:
            data = read_json(path)
        except InputError as exc:
            return None, str(exc).removeprefix(f"{path}: ")
        if not isinstance(data, dict) or "step" not in data:
            return None, "not a checkpoint (no step)"
        if json_crc_ok(data) is False:
            return None, "checksum mismatch: a value was changed after it was written"
        data.pop(CRC, None)
        return data, ""

    def damaged_checkpoints(self) -> list[tuple[Path, str]]:
        """Every damaged checkpoint file and why (see :meth:`read_checkpoint`)."""
        out = []
        for path in self.checkpoints():
            data, why = self.read_checkpoint(path)
            if data is None:
                out.append((path, why))
        return out

    def latest_checkpoint(self, *, warn: bool = True) -> dict | None:
        """The newest good checkpoint, or None. A damaged newer one is passed over with one
        line on stderr naming it (``warn``): a resume then redoes the steps since the older one."""
        skipped: list[str] = []
        for path in reversed(self.checkpoints()):
            data, why = self.read_checkpoint(path)
            if data is None:
                skipped.append(f"{path.name} ({why})")
                continue
            data["file"] = path.name
            if warn and skipped:
                print(f"warning: {self.checkpoints_dir}: damaged checkpoint {', '.join(skipped)}; "
                      f"using {path.name} (step {data['step']}) instead", file=sys.stderr, flush=True)
            return data
        if warn and skipped:
            print(f"warning: {self.checkpoints_dir}: every checkpoint is damaged: {', '.join(skipped)}",
                  file=sys.stderr, flush=True)
        return None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"
