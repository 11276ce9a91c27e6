"""A small TOML writer for resolved scenarios (tomllib reads only).

Handles what a scenario holds: tables, strings, booleans, numbers, lists of scalars and inline
tables of scalars. Floats are written with repr so a reread gives the same value.
"""

from __future__ import annotations

import json


def value(v) -> str:
    """One value as TOML text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if v == v and abs(v) != float("inf") else json.dumps(str(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table(v) -> bool:
    return isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()) or (
        isinstance(v, dict) and len(v) > 6)


def dumps(doc: dict, prefix: str = "") -> str:
    lines, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict) and (not prefix or _is_table(v)):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {value(v)}")
    out = "\n".join(lines)
    for k, v in tables:
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n\n[{name}]\n" + dumps(v, name)
    return out.strip() + "\n" if not prefix else out.strip("\n")
