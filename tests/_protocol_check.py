"""Payload checks against host/protocol.toml (learnboard.host.messages): a message's
fields, their types, ranges and enums; nothing undocumented, nothing documented missing.
Each check returns a list of problems (empty: the payload is as defined)."""

from __future__ import annotations

from typing import Any

from learnboard.host import messages
from learnboard.host.messages import Field


def type_ok(spec: str, value: Any) -> bool:
    """Does ``value`` (as msgpack decodes it) have the definition's type ``spec``?"""
    if spec.startswith("array of "):
        return isinstance(value, list) and all(type_ok(spec[9:], v) for v in value)
    if "|" in spec:
        return any(type_ok(s, value) for s in spec.split("|"))
    if spec == "any":
        return True
    if spec == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec == "float":  # float32 on the wire; a whole number may come as an int
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec == "str":
        return isinstance(value, str)
    if spec == "bool":
        return isinstance(value, bool)
    if spec == "nil":
        return value is None
    if spec == "map":
        return isinstance(value, dict)
    if spec == "array":
        return isinstance(value, list)
    raise ValueError(f"protocol.toml: unknown type {spec!r}")


def _numbers(value: Any) -> list:
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def field_problems(where: str, f: Field, value: Any) -> list[str]:
    """Type, range and enum of one field's value."""
    if not type_ok(f.type, value):
        return [f"{where}.{f.name} = {value!r:.60}: not {f.type}"]
    out = []
    for x in _numbers(value):
        if f.min is not None and x < f.min or f.max is not None and x > f.max:
            out.append(f"{where}.{f.name} = {x!r}: outside {f.min} … {f.max}")
            break
    if f.enum is not None and value not in f.enum:
        out.append(f"{where}.{f.name} = {value!r}: not one of {f.enum}")
    return out


def map_problems(where: str, fields: tuple[Field, ...], data: Any) -> list[str]:
    """A map against its field list: undocumented keys, missing required ones, values."""
    if not isinstance(data, dict):
        return [f"{where}: {data!r:.60} is not a map"]
    by_name = {f.name: f for f in fields}
    out = [f"{where}: undocumented field {k!r}" for k in data if k not in by_name]
    out += [f"{where}: documented field {f.name!r} missing" for f in fields
            if not f.optional and f.name not in data]
    for k, v in data.items():
        if k in by_name:
            out += field_problems(where, by_name[k], v)
    return out


PARAMS = tuple(f._replace(optional=True) for f in messages.PARAMETERS)


def args_problems(command: str, args: dict) -> list[str]:
    """A request's arguments against the command's definition."""
    if command not in messages.COMMANDS:
        return [f"{command}: not a documented command"]
    if command in messages.PARAMS_IN_ARGS:
        return map_problems(f"{command} args", PARAMS, args)
    return map_problems(f"{command} args", messages.COMMANDS[command].args, args)


def result_problems(command: str, result: Any, asked: dict | None = None) -> list[str]:
    """An OK reply's result against the command's definition."""
    if command in messages.PARAMS_IN_RESULT:
        out = map_problems(f"{command} result", PARAMS, result)
        names = (asked or {}).get("names") if command == "get_params" else list(asked or {})
        if not names and command == "get_params":
            names = [f.name for f in messages.PARAMETERS]
        if isinstance(result, dict) and set(result) != set(names or []):
            out.append(f"{command} result: keys {sorted(result)} are not those asked, {sorted(names or [])}")
        return out
    return map_problems(f"{command} result", messages.COMMANDS[command].result, result)


def error_problems(body: Any) -> list[str]:
    """An ERR body: ``[id, code, message, detail]`` with detail {field?, edge?}."""
    if not isinstance(body, list) or len(body) != 4:
        return [f"ERR body {body!r:.80} is not [id, code, message, detail]"]
    rid, code, message, detail = body
    out = []
    lim = messages.LIMITS
    if rid is not None and not (isinstance(rid, int) and lim["request_id_min"] <= rid
                                <= lim["request_id_max"]):
        out.append(f"ERR id {rid!r}: not nil or a request id")
    if code not in {int(e) for e in messages.ErrorCode}:
        out.append(f"ERR code {code!r}: not a documented error code")
    if not isinstance(message, str) or len(message) > lim["err_message_max"]:
        out.append(f"ERR message {message!r:.60}: not a str of at most {lim['err_message_max']}")
    out += map_problems("ERR detail", messages.ERROR_DETAIL, detail)
    return out


def event_problems(body: Any) -> list[str]:
    if not isinstance(body, list) or len(body) != 2 or body[0] not in messages.EVENTS:
        return [f"EVT body {body!r:.80} is not [documented name, data]"]
    return map_problems(f"event {body[0]}", messages.EVENTS[body[0]], body[1])


def telemetry_problems(body: Any) -> list[str]:
    return map_problems("TLM", messages.TELEMETRY, body)
