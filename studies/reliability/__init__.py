"""Fault and safety campaigns on the emulated boards (issue: reliability).

Each campaign is a function returning a small report dataclass; ``tests/`` run short
versions, ``benchmarks/reliability.py`` the long ones, and ``docs/reliability.md`` holds
the table of what was injected and what survived.
"""
