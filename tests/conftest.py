import os
import shutil
from pathlib import Path

import pytest
from learnboard.emulator.vm import VM_ENV

from tests.mpvm import VMS, vm_binary

REFERENCE_ENV = "LEARNBOARD_REFERENCE"
"""Environment setting naming the folder of the authors' reference networks
(``data_N00064_Lp0.0100_r1.txt`` ...); `.ci/run` sets it. Never copied into the repository."""


@pytest.fixture(scope="session")
def reference_networks() -> Path:
    """The reference network folder named by ``$LEARNBOARD_REFERENCE``: a skip with that
    hint when unset or missing, a failure when ``CI`` is set."""
    folder = os.environ.get(REFERENCE_ENV)
    if not folder or not Path(folder).is_dir():
        from learnboard.reference import SOURCE

        message = (f"reference networks not found: set {REFERENCE_ENV} to the folder of the "
                   f"authors' network files, {SOURCE} (now {folder!r})")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(folder)


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test marked `vm` runs on each VM (ids [vm64] and [vm32]); grouped per module
    # so module-scoped boards start once per VM. `vm("vm64")` names the one VM a test runs
    # on: for a test of the host whose board is only a partner (e.g. an older firmware
    # from the history), where the VM's word size is not what is tested.
    marker = metafunc.definition.get_closest_marker("vm")
    if marker and "micropython" in metafunc.fixturenames:
        vms = marker.args or VMS
        unknown = [v for v in vms if v not in VMS]
        if unknown:
            raise ValueError(f"{metafunc.definition.nodeid}: vm marker names {unknown}; use {VMS}")
        metafunc.parametrize("micropython", vms, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def micropython(request: pytest.FixtureRequest):
    """The VM binary of a test marked ``vm`` (parametrised over :data:`tests.mpvm.VMS`):
    exported as ``$LEARNBOARD_MICROPYTHON`` for the test, so ``run_vm``, ``VMBoard``
    and ``learnboard emulate`` subprocesses all run it. Missing: a skip with the hint how to
    get it, a failure when ``CI`` is set. None for tests not marked ``vm``."""
    kind = getattr(request, "param", None)
    if kind is None:
        yield None
        return
    exe = vm_binary(kind)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(VM_ENV, exe)
        yield exe
