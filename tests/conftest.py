import os
import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE_NETWORKS = SHARED / "reference" / "networks"


@pytest.fixture(scope="session")
def reference_networks() -> Path:
    """The reference network folder beside the checkout (never copied into the repo)."""
    if not REFERENCE_NETWORKS.is_dir():
        message = f"reference networks not found at {REFERENCE_NETWORKS}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REFERENCE_NETWORKS


@pytest.fixture(scope="session")
def ngspice() -> str:
    """Path of ngspice; skipped with an install hint (a failure under CI) when missing."""
    exe = shutil.which("ngspice")
    if exe is None:
        message = "ngspice not installed: apt-get install -y ngspice"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return exe
