"""Reliability campaign, security: nothing received is ever run as code or unpickled,
no request names a file, and frames are bounded on both ends. These read the source
(every module of the package) so that a later change that breaks the rule fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from learnboard.firmware.lbfw import frame as fw_frame
from learnboard.host import codec
from learnboard.host.messages import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("firmware", "host", "emulator", "learnboard")
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "jsonpickle", "yaml"}
# the only places that open files by a computed name, each with the reason it is safe
OPEN_IN_FIRMWARE = {
    "lbfw/desc.py": "load_description reads board.json (a constant default)",
    "lbfw/app.py": "repl/reset write main.py's notes beside board.json (constant names)",
    "main.py": "the note that ends a maintenance boot (a constant name beside board.json)",
}


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def test_the_sources_were_found():
    assert sum(1 for _ in _modules()) > 60


@pytest.mark.parametrize("path_tree", list(_modules()), ids=lambda pt: str(pt[0].relative_to(ROOT)))
def test_no_code_evaluation_or_unpickling(path_tree):
    path, tree = path_tree
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in UNSAFE_CALLS, f"{path}:{node.lineno}: {node.func.id}()"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in UNSAFE_MODULES, f"{path}:{node.lineno}: import {name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
            # numpy's load must refuse pickled objects
            if isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy"):
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False, \
                    f"{path}:{node.lineno}: np.load without allow_pickle=False"


def test_firmware_opens_only_its_own_files():
    for path in sorted((ROOT / "firmware").rglob("*.py")):
        rel = str(path.relative_to(ROOT / "firmware"))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                assert rel in OPEN_IN_FIRMWARE, f"firmware/{rel}:{node.lineno} opens a file"


def test_no_request_names_a_path():
    for cmd in COMMANDS.values():
        for f in cmd.args:
            assert not any(w in f.name.lower() for w in ("path", "file", "dir")), (cmd.name, f.name)


def test_frames_are_bounded_the_same_on_both_ends():
    assert codec.MAX_ENCODED == fw_frame.MAX_ENCODED and codec.MAX_BODY == fw_frame.MAX_BODY
    with pytest.raises(codec.FrameTooLarge):
        codec.encode_frame(1, 0, [1, "upload_examples", {"x": [[0.1] * 8] * 40}])
    dec = codec.FrameDecoder()
    dec.feed(b"\x01" * (codec.MAX_ENCODED * 4) + b"\x00")  # an endless frame is dropped, not stored
    assert dec.stats.oversize == 1
