"""The command line as a user meets it: every command's --help shows an example, and a
reader that stops early (`learnboard info --json | head -1`) gets no traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from learnboard.cli import COMMANDS, build_parser


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


PARSERS = list(_walk(build_parser(), ("learnboard",)))


def test_the_tree_has_every_command_and_the_board_subcommands():
    names = {" ".join(path) for path, _ in PARSERS}
    assert {f"learnboard {c}" for c in COMMANDS} <= names
    assert {"learnboard board list", "learnboard board show", "learnboard board compile"} <= names


@pytest.mark.parametrize("path,parser", PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_help_shows_an_example_of_this_command(path, parser):
    text = parser.format_help()
    lines = [line.strip() for line in text.splitlines()]
    prefix = " ".join(path) if len(path) > 1 else "learnboard "
    examples = [line for line in lines if line.startswith(prefix) and line.startswith("learnboard ")]
    assert examples, f"`{' '.join(path)} --help` shows no example line starting with `{prefix}`:\n{text}"
    # an example must parse: the first word after the command path is not a typo of an option
    first = examples[0].split("(")[0].split()
    assert first[: len(path)] == list(path) or len(path) == 1


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    read, write = os.pipe()
    os.close(read)  # the reader has gone, as `| head -1` after its line
    try:
        return subprocess.run([sys.executable, "-m", "learnboard", *args], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [("info", "--json"), ("ports", "--json", "--no-probe"), ("--help",)])
def test_a_closed_output_pipe_ends_quietly(args):
    done = _into_closed_pipe(*args)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.stderr.strip() == ""
    assert done.returncode in (0, 141)  # --help: argparse ignores the error; commands: 128 + SIGPIPE


def test_head_of_info_json_is_the_whole_object():
    import json

    done = subprocess.run(f"'{sys.executable}' -m learnboard info --json | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert done.stderr == "" and json.loads(done.stdout)["board"] == "gen2-clln"


def _option_help(command: str, flag: str) -> str:
    parser = dict((" ".join(p), sub) for p, sub in PARSERS)[f"learnboard {command}"]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return action.help


@pytest.mark.parametrize("flag,means,not_means", [
    ("--alpha", "learning rate", "nudge"), ("--eta", "nudge amplitude", "learning rate"),
    ("--lambda", "power weight", "nudge")])
def test_sim_and_train_describe_the_learning_flags_alike(flag, means, not_means):
    """Same names, same meanings, same words (the paper's): only the defaults differ."""
    sim, train = _option_help("sim", flag), _option_help("train", flag)
    common = os.path.commonprefix([sim, train])
    assert means in common and not_means not in common.split(":")[0], (sim, train)
    assert len(common) > 40, (sim, train)  # one description, not two that happen to agree


def test_train_help_says_the_meaning_of_alpha_and_eta_changed():
    text = dict((" ".join(p), sub) for p, sub in PARSERS)["learnboard train"].format_help()
    assert "Breaking change" in text and "--alpha is the learning rate and --eta the nudge" in text


@pytest.mark.parametrize("command", ["sim", "train"])
@pytest.mark.parametrize("flag", ["--lam", "--lambda"])
def test_sim_and_train_take_lam_and_lambda_alike(command, flag):
    assert build_parser().parse_args([command, flag, "1e-6"]).lam == 1e-6
