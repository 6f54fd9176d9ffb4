"""The import rules between the layers (docs/architecture.md), read from the source.

bottom (learnboard/: boards, physics, engine, tasks, ...) imports nothing above it;
host/ and emulator/ each import only the bottom (and the firmware), never each other;
studies/ and cli/ sit on top and are the only places that wire host and emulator
together; the firmware imports nothing of the host's packages (it runs on the board). Every import statement counts, also those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder -> the package its files belong to
LAYERS = {
    "learnboard": "learnboard",
    "host": "learnboard.host",
    "emulator": "learnboard.emulator",
    "studies": "learnboard.studies",
    "cli": "learnboard.cli",
    "firmware": "learnboard.firmware",
}
ABOVE_BOTTOM = ("learnboard.host", "learnboard.emulator", "learnboard.studies", "learnboard.cli")
TOP = ("learnboard.studies", "learnboard.cli")
FORBIDDEN = {
    "learnboard": ABOVE_BOTTOM,
    "host": ("learnboard.emulator", *TOP),
    "emulator": ("learnboard.host", *TOP),
    "firmware": ("learnboard",),
}
# what a folder may import although a rule above bans its prefix: its own package
OWN = {"firmware": "learnboard.firmware"}


def _package(path: Path, folder: str) -> str:
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = [LAYERS[folder], *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    else:
        parts.pop()  # a module's relative imports start at its package
    return ".".join(parts)


def imports_of(path: Path, folder: str) -> list[tuple[int, str]]:
    """Every module a source file imports, absolute, with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package(path, folder)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # `from learnboard import cli` imports learnboard.cli
            out += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names]
    return out


# `python -m learnboard` starts the command line: an entry point, which nothing imports
ENTRY_POINTS = {"learnboard/__main__.py"}


def violations(folder: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if ".venv" in path.parts or rel in ENTRY_POINTS:
            continue
        seen: set[int] = set()
        for line, mod in sorted(imports_of(path, folder)):
            own = OWN.get(folder)
            if own and (mod == own or mod.startswith(own + ".")):
                continue
            banned = [b for b in FORBIDDEN[folder] if mod == b or mod.startswith(b + ".")]
            if banned and line not in seen:  # one report per import statement
                seen.add(line)
                bad.append(f"{rel}:{line} imports {mod}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_or_beside_it(folder):
    found = violations(folder)
    assert not found, (f"{folder}/ must not import {', '.join(FORBIDDEN[folder])} (the layer rules "
                       "of docs/architecture.md); move the code up to cli/ or studies/, or "
                       "the shared part down to learnboard/:\n  " + "\n  ".join(found))


def test_the_check_sees_imports_of_every_form(tmp_path, monkeypatch):
    # the rule must catch a lazy import, a relative one and `from learnboard import cli`
    fake = tmp_path / "host"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text(
        "def f():\n    from learnboard.emulator.vm_board import VMBoard\n"
        "from learnboard import cli\n"
        "import learnboard.studies.sweep as s\n"
        "from .link import Link\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = violations("host")
    assert any("learnboard.emulator.vm_board" in v for v in found)
    assert any(v.endswith("imports learnboard.cli") for v in found)
    assert any("learnboard.studies.sweep" in v for v in found)
    assert not any("link" in v for v in found)  # learnboard.host.link is host's own


def test_every_source_folder_is_a_layer():
    # a new top-level package folder must be given a place in the rules
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "hil_tests"} == set(LAYERS)


def test_every_emulated_front_end_is_a_truth_probe():
    # host and emulator meet through the host's protocol, which the emulator never imports
    from learnboard.emulator.cpython_board import CPythonBoard
    from learnboard.emulator.inprocess_board import InProcessBoard
    from learnboard.emulator.vm_board import VMBoard
    from learnboard.host.truth import TruthProbe

    for front_end in (InProcessBoard, VMBoard, CPythonBoard):
        assert issubclass(front_end, TruthProbe), front_end.__name__
    assert not issubclass(object, TruthProbe)
