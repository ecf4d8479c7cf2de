"""Reading YAML files with duplicate keys refused, and pydantic errors as one line naming the file and key."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from journeysim.errors import InputError

__all__ = ["read_yaml", "format_validation"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error.

    Plain YAML keeps the last of two equal keys, silently: a scenario with ``channels:`` twice
    would lose the first set of channels without a word.
    """


def _mapping_without_duplicates(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key '{key}' is given twice (first on line {seen[key]}); keep one",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path, what: str = "a scenario file", keys: str = "market:, personas:, ...") -> dict:
    """A YAML mapping from ``path``; unreadable files and non-mappings get a message naming the file."""
    if not path.exists():
        raise InputError("file not found", str(path))
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader
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


#: pydantic's wording of a few errors, in the words of a scenario file.
_MESSAGES = {
    "finite_number": "must be a finite number (NaN and infinity are not allowed)",
}


def _user_loc(err: dict) -> tuple[str, ...]:
    loc = [str(x) for x in err["loc"] if not str(x).startswith(("function-", "union["))]
    # pydantic reports union members by type name; keep the user's key path only
    return tuple(x for x in loc if x not in ("JourneySpec", "str", "float", "list[float]", "int", "tuple[int, int]"))


def _most_specific(errors: list[dict]) -> list[dict]:
    """Of a union's failed alternatives, keep those that got furthest.

    ``spend: {tv: [1, .inf]}`` fails as a number (at ``spend.tv``) and as a list (at ``spend.tv.3``);
    the second names the place. At one place, a wrong value beats "should be a valid <type>".
    """
    locs = [_user_loc(e) for e in errors]
    out = []
    for i, err in enumerate(errors):
        deeper = any(len(o) > len(locs[i]) and o[:len(locs[i])] == locs[i] for o in locs)
        typed = err["type"].endswith("_type") and any(
            o == locs[i] and not errors[j]["type"].endswith("_type") for j, o in enumerate(locs) if j != i)
        if not (deeper or typed):
            out.append(err)
    return out or errors


def format_validation(exc: ValidationError) -> str:
    lines = []
    seen = set()
    for err in _most_specific(exc.errors()):
        loc = list(_user_loc(err))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "missing":
            msg = "required key is missing"
        msg = _MESSAGES.get(err["type"], msg)
        key = (".".join(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"{'.'.join(loc) or '(top level)'}: {msg}")
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems:\n  " + "\n  ".join(lines[:12])
