"""Generate docs/protocol.md's tables and test-vector frames from ``protocol.toml``.

``python -m learnboard.host.protocol_doc [DOC]`` rewrites every block between
``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->`` in DOC (default: the
repository's docs/protocol.md); the prose around them stays hand-written. ``--check``
writes nothing and exits 1 when DOC differs from what the generator would write.
The vector frames are the host codec's output for the definition's vector bodies.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from . import codec, messages
from .messages import Field

DEFAULT_DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
_BLOCK = re.compile(r"(<!-- BEGIN GENERATED (?P<name>[\w:-]+) -->\n)(?P<body>.*?)"
                    r"(<!-- END GENERATED (?P=name) -->)", re.S)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _range(f: Field) -> str:
    if f.enum is not None:
        return ", ".join(f'"{e}"' for e in f.enum)
    if f.min is None and f.max is None:
        return ""
    lo = "" if f.min is None else f"{f.min:g}"
    hi = "" if f.max is None else f"{f.max:g}"
    if lo == hi:
        return lo
    return f"≥ {lo}" if not hi else (f"≤ {hi}" if not lo else f"{lo} … {hi}")


def field_table(fields: Iterable[Field], empty: str = "_(empty map)_") -> str:
    fields = list(fields)
    if not fields:
        return empty + "\n"
    rows = ["| field | type | unit | range | meaning |", "|---|---|---|---|---|"]
    for f in fields:
        name = f"`{f.name}`" + (" (optional)" if f.optional else "")
        unit = f.unit or "—"
        if f.host_unit:
            unit += f" (host: {f.host_unit})"
        rows.append(f"| {name} | {_cell(f.type)} | {_cell(unit)} | {_cell(_range(f)) or '—'} "
                    f"| {_cell(f.doc)} |")
    return "\n".join(rows) + "\n"


def _table(header: tuple[str, ...], rows) -> str:
    """A markdown table: the header, its rule, one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _types() -> str:
    return _table(("type", "name", "direction", "body"),
                  ((t["code"], t["name"], t["direction"], t["body"]) for t in messages.MESSAGE_TYPES))


def _limits() -> str:
    return _table(("limit", "value"), ((f"`{k}`", v) for k, v in messages.LIMITS.items()))


def _errors() -> str:
    return _table(("code", "name", "meaning"),
                  ((e.value, e.name, messages.ERROR_MEANINGS[e.value]) for e in messages.ErrorCode))


def _faults() -> str:
    return _table(("bit value", "name", "meaning"),
                  ((f.value, f.name, messages.FAULT_MEANINGS[f.value]) for f in messages.Fault))


def _command(name: str) -> str:
    c = messages.COMMANDS[name]
    return (f"### `{c.name}`\n\n{c.doc}\n\nArguments:\n\n{field_table(c.args)}\n"
            f"Result:\n\n{field_table(c.result)}")


def _events() -> str:
    out = []
    for name, data in messages.EVENTS.items():
        out.append(f"### event `{name}`\n\n{messages.EVENT_DOCS[name]}\n\n{field_table(data)}")
    return "\n".join(out)


def _vectors() -> str:
    out = []
    for v in messages.VECTORS:
        hexed = codec.encode_frame(v.type, v.seq, v.body).hex()
        lines = "\n".join("  " + hexed[i:i + 64] for i in range(0, len(hexed), 64))
        out.append(f"```vector\nname: {v.name}\ntype: {v.type}\nseq: {v.seq}\n"
                   f"body: {json.dumps(v.body, ensure_ascii=False)}\nframe:\n{lines}\n```\n")
    return "\n".join(out)


def blocks() -> dict[str, Callable[[], str]]:
    """Every generated block by marker name."""
    out: dict[str, Callable[[], str]] = {
        "types": _types, "limits": _limits, "errors": _errors,
        "error-detail": lambda: field_table(messages.ERROR_DETAIL),
        "parameters": lambda: field_table(messages.PARAMETERS),
        "telemetry": lambda: field_table(messages.TELEMETRY),
        "events": _events, "faults": _faults, "vectors": _vectors,
    }
    for name in messages.COMMANDS:
        out[f"command:{name}"] = lambda name=name: _command(name)
    return out


def render(text: str, source: str = "docs/protocol.md") -> str:
    """``text`` with every generated block rewritten; ValueError names a missing marker."""
    gen = blocks()
    seen = set()

    def sub(m: re.Match) -> str:
        name = m["name"]
        if name not in gen:
            raise ValueError(f"{source}: unknown generated block {name!r}; "
                             f"known: {', '.join(sorted(gen))}")
        seen.add(name)
        return m.group(1) + gen[name]() + m.group(4)

    out = _BLOCK.sub(sub, text)
    missing = sorted(set(gen) - seen)
    if missing:
        raise ValueError(f"{source}: no generated block for {', '.join(missing)}; add "
                         "<!-- BEGIN GENERATED name --> / <!-- END GENERATED name --> markers")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m learnboard.host.protocol_doc",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("doc", nargs="?", type=Path, default=DEFAULT_DOC,
                    help="the protocol document (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the document is not what would be written")
    a = ap.parse_args(argv)
    text = a.doc.read_text(encoding="utf-8")
    try:
        new = render(text, str(a.doc))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.check:
        if new != text:
            print(f"{a.doc} is out of date with protocol.toml; run "
                  "`python -m learnboard.host.protocol_doc` to regenerate it", file=sys.stderr)
            return 1
        return 0
    if new != text:
        a.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
