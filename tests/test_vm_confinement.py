"""The emulated board's VM sees its flash folder and nothing else.

Each test runs code on a virtual board (:class:`VMBoard`, the real MicroPython VM, both
the 64-bit and the 32-bit one) through the real ``mpremote``, as a user or a board program
would, and checks one way out of the flash folder: ``..`` past the root, relative paths
after ``chdir``, symbolic links in the flash folder pointing out, the emulator's read-only
module folders, and the unix port's ``os.system``/``VfsPosix``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from learnboard.emulator import landlock
from learnboard.emulator.vm_board import VMBoard

from tests.mpvm import require_vm
from tests.test_emulator_port import mpremote

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def board(tmp_path_factory, micropython):
    """A virtual board whose flash holds a.txt and sub/, beside a host folder with a secret."""
    require_vm()
    base = tmp_path_factory.mktemp("confine")
    host = base / "host"
    host.mkdir()
    (host / "secret.txt").write_text("host data")
    flash = base / "flash"
    (flash / "sub").mkdir(parents=True)
    (flash / "a.txt").write_text("A")
    b = VMBoard(flash)
    b.start()
    yield b, host
    b.stop()


def run(board_port: str, code: str):
    """Run ``code`` on the board; it leaves its answer in ``r``, which comes back as JSON."""
    script = ("import json, os\nr = None\n" + code +
              "\nprint('@@' + json.dumps(r))")
    out = mpremote(board_port, "exec", script)
    line = next(x for x in out.splitlines() if x.startswith("@@"))
    return json.loads(line[2:])


def errno_of(expr: str) -> str:
    return f"try:\n {expr}\n r = 'no error'\nexcept OSError as e:\n r = e.errno\n"


def test_dotdot_past_the_root_stays_at_the_root(board):
    b, _ = board
    up, root = run(b.port, "r = [sorted(os.listdir('/../../../../../..')), sorted(os.listdir('/'))]")
    # "/" lists the mount points too (the emulator's /.emu*), as vfs does on a board
    assert up == [n for n in root if not n.startswith(".emu")] and "a.txt" in up and "sub" in up
    assert not set(root) & {"etc", "proc", "usr"}
    assert run(b.port, "os.chdir('..')\nr = os.getcwd()") == "/"


def test_relative_paths_after_chdir_stay_inside(board):
    b, _ = board
    got = run(b.port, "os.chdir('/sub')\nos.chdir('../../..')\n"
                      "r = [os.getcwd(), sorted(os.listdir('..'))]\nos.chdir('/')")
    assert got[0] == "/" and "a.txt" in got[1] and "etc" not in got[1]
    got = run(b.port, "os.chdir('/sub')\nr = sorted(os.listdir('../../../..'))\nos.chdir('/')")
    assert "a.txt" in got and "etc" not in got


def test_writes_through_dotdot_land_in_the_flash_folder(board):
    b, _ = board
    run(b.port, "with open('/../../../escape.txt', 'w') as f:\n f.write('x')\n"
                "os.rename('/escape.txt', 'sub/../../../moved.txt')")
    assert (b.flash_dir / "moved.txt").read_text() == "x"
    assert not (b.flash_dir.parent / "escape.txt").exists()
    assert not (b.flash_dir.parent / "moved.txt").exists()
    assert not Path("/moved.txt").exists()
    run(b.port, "os.remove('/moved.txt')")


def test_a_symbolic_link_pointing_out_is_not_there(board):
    b, host = board
    (b.flash_dir / "out").symlink_to(host)
    (b.flash_dir / "secret-link.txt").symlink_to(host / "secret.txt")
    try:
        names = run(b.port, "r = os.listdir('/')")  # made while the VM runs: not listed
        assert "out" not in names and "secret-link.txt" not in names
        mpremote(b.port, "soft-reset")  # the next boot knows them
        names = run(b.port, "r = os.listdir('/')")
        assert "out" not in names and "secret-link.txt" not in names
        assert run(b.port, errno_of("os.listdir('/out')")) == 2
        assert run(b.port, errno_of("open('/out/secret.txt').read()")) == 2
        assert run(b.port, errno_of("open('out/new.txt', 'w')")) == 2
        assert run(b.port, errno_of("open('/secret-link.txt').read()")) == 2
        assert run(b.port, errno_of("os.remove('/out/secret.txt')")) == 2
        assert run(b.port, errno_of("os.chdir('/out')")) == 2
        assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]
        assert (host / "secret.txt").read_text() == "host data"
    finally:
        (b.flash_dir / "out").unlink()
        (b.flash_dir / "secret-link.txt").unlink()


def test_the_emulators_module_folders_are_read_only_and_closed(board):
    b, _ = board
    names = run(b.port, "r = sorted(os.listdir('/.emu0/../../..'))")
    assert names == run(b.port, "r = sorted(os.listdir('/.emu0'))")
    assert "machine.mpy" in names or "machine.py" in names
    assert run(b.port, errno_of("open('/.emu0/../../x.py', 'w')")) == 30  # EROFS


@pytest.mark.parametrize("expr", ["os.system", "os.popen", "os.putenv", "os.VfsPosix",
                                  "__import__('uos').system", "__import__('uos').VfsPosix",
                                  "__import__('vfs').VfsPosix"])
def test_no_host_commands_and_no_host_mounts(board, expr):
    b, _ = board
    assert run(b.port, f"try:\n {expr}\n r = 'reachable'\nexcept AttributeError:\n r = 'absent'") == "absent"


def test_mounted_filesystems_give_no_host_folder(board):
    b, _ = board
    kinds = run(b.port, "import vfs\nr = [type(m[0]).__name__ for m in vfs.mount()]")
    assert kinds and "VfsPosix" not in kinds


def test_board_code_still_sees_a_board_filesystem(board):
    """What mpremote and the firmware use keeps working: listing with sizes, stat, mkdir,
    rename, remove, chdir/getcwd."""
    b, _ = board
    got = run(b.port, "os.mkdir('/d')\nwith open('d/f.bin', 'wb') as f:\n f.write(b'12345')\n"
                      "os.chdir('d')\nos.rename('f.bin', 'g.bin')\n"
                      "r = [os.getcwd(), list(os.ilistdir('.')), os.stat('/d/g.bin')[6]]\n"
                      "os.remove('g.bin')\nos.chdir('/')\nos.rmdir('d')")
    assert got[0] == "/d" and got[1][0][0] == "g.bin" and got[1][0][3] == 5 and got[2] == 5
    assert not (b.flash_dir / "d").exists()


@pytest.mark.skipif(not landlock.available(), reason="the kernel has no Landlock (Linux 5.13+)")
def test_code_that_gets_the_unix_os_back_still_writes_and_runs_nothing_outside(board, tmp_path):
    """Board code can always reach the VM's built-in ``os`` again; on Linux the kernel
    then refuses writes outside the flash folder and running programs."""
    b, host = board
    target = host / "written-by-the-vm.txt"
    got = run(b.port, f"""import sys
del sys.modules['uos']
import uos
sys.modules['uos'] = os
out = []
try:
    uos.mount(uos.VfsPosix('/'), '/host')
    with open('/host{target}', 'w') as f:
        f.write('x')
    out.append('written')
except OSError as e:
    out.append(e.errno)
out.append(uos.system('touch {host}/ran-a-command'))
try:
    uos.umount('/host')
except OSError:
    pass
r = out""")
    assert got[0] == 13  # EACCES: the kernel refused the write
    assert got[1] != 0
    assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]
