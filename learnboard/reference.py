"""Where the authors' reference networks are: an option, else ``$LEARNBOARD_REFERENCE``.

The reference networks are the disordered networks published with the code of Stern,
Dillavou, Jayaraman, Durian & Liu, "Training self-learning circuits for power-efficient
solutions", APL Machine Learning 2, 016114 (2024): the ``NetworkStates/`` folder of
https://github.com/NachiStern/Power-efficient-learning. learnboard does not ship them
(that repository states no licence): download that folder once and name it with the
command's option (``learnboard paper --reference DIR``) or this environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from learnboard.errors import InputError

ENV = "LEARNBOARD_REFERENCE"
"""Environment variable naming the folder of the reference network files."""

SOURCE = "the NetworkStates/ folder of https://github.com/NachiStern/Power-efficient-learning"
"""Where the files come from, quoted in every error about them."""

FILES = {  # label -> file name in the reference folder (the authors' names)
    "r1": "data_N00064_Lp0.0100_r1.txt", "r2": "data_N00064_Lp0.0100_r2.txt",
    "r3": "data_N00064_Lp0.0100_r3.txt", "r4": "data_N00064_Lp0.0100_r4.txt",
    "r5": "data_N00064_Lp0.0100_r5.txt", "r51": "data_N00128_Lp0.0100_r51.txt",
    "r101": "data_N00256_Lp0.0100_r101.txt",
}


def reference_folder(option: str | Path | None, *, option_name: str = "--reference",
                     environ: Mapping[str, str] | None = None) -> tuple[Path, str] | None:
    """The reference folder and the setting that named it (``option_name`` or ``ENV``).

    The option wins; without it ``$LEARNBOARD_REFERENCE`` (when set and not empty);
    None when neither is given. The folder is not checked here: see :func:`reference_file`.
    """
    if option:
        return Path(option), option_name
    value = (os.environ if environ is None else environ).get(ENV, "")
    return (Path(value), ENV) if value else None


def require_folder(option: str | Path | None, *, option_name: str = "--reference",
                   environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """Like :func:`reference_folder`, but an :class:`InputError` saying which option or
    variable to set, and where the files come from, when neither names a folder."""
    found = reference_folder(option, option_name=option_name, environ=environ)
    if found is None:
        raise InputError(f"no reference networks given: pass {option_name} or set {ENV} "
                         f"to a folder holding the authors' network files ({FILES['r1']}, ...), "
                         f"downloaded from {SOURCE}", field=option_name)
    return found


def reference_file(folder: Path, label: str, setting: str) -> Path:
    """The absolute path of network ``label`` (r1, r2, ...) in ``folder``.

    Raises :class:`InputError` naming ``setting`` (the option or the environment variable
    that gave the folder) and where the files come from when the folder or file is missing.
    """
    name = FILES[label]
    if not folder.is_dir():
        raise InputError(f"no such folder; point {setting} at a folder holding the authors' "
                         f"reference networks ({name}, ...), downloaded from {SOURCE}",
                         source=str(folder), field=setting)
    path = folder / name
    if not path.is_file():
        raise InputError(f"{name} is missing; the folder named by {setting} must hold the "
                         f"authors' reference networks, downloaded from {SOURCE}",
                         source=str(folder), field=setting)
    return path.resolve()
