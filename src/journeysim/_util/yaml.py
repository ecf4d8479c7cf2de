"""Reading YAML files with duplicate keys refused, and pydantic errors as one line naming the file and key."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from journeysim.errors import InputError


def read_yaml(path: Path, what: str = "a scenario file", keys: str = "market:, personas:, ...") -> dict:
    """A YAML mapping from ``path``; unreadable files and non-mappings get a message naming the file."""
    if not path.exists():
        raise InputError("file not found", str(path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", f"{path}{pos}") from None
    except UnicodeDecodeError:
        raise InputError("not a text file", str(path)) from None
    if not isinstance(raw, dict):
        raise InputError(f"{what} must be a mapping of keys ({keys}), found {type(raw).__name__}", str(path))
    return raw


def format_validation(exc: ValidationError) -> str:
    lines = []
    seen = set()
    for err in exc.errors():
        loc = [str(x) for x in err["loc"] if not str(x).startswith(("function-", "union["))]
        # pydantic reports union members by type name; keep the user's key path only
        loc = [x for x in loc if x not in ("JourneySpec", "str", "float", "list[float]", "int", "tuple[int, int]")]
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "missing":
            msg = "required key is missing"
        key = (".".join(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"{'.'.join(loc) or '(top level)'}: {msg}")
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems:\n  " + "\n  ".join(lines[:12])
