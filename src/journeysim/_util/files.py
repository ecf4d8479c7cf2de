"""Atomic file output: a file appears whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from journeysim.errors import InputError

__all__ = ['atomic_path', 'staged_dir', 'write_json', 'write_text', 'save_figure', 'to_jsonable']


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, make_dirs: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; if the block succeeds, move it over ``path`` atomically.

    The only file writer of the package: readers see the old file or the complete new one, never a
    half-written one, and on any error (or Ctrl-C) the temporary file is removed. The temporary file
    is created in the same directory (so :func:`os.replace` is atomic) with the permissions a normal
    file would get, and is flushed to disk before the rename. ``make_dirs=False``: a missing
    directory is an :class:`~journeysim.InputError` instead of being created.
    """
    target = Path(path)
    directory = target.parent
    if make_dirs:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise InputError("directory does not exist", where=str(directory))
    if target.is_dir():
        raise InputError("is a directory, expected a file name", where=str(target))
    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror}", where=str(directory)) from exc
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh hidden directory beside ``out`` to write a command's outputs into.

    If the block succeeds, every file written there is moved into ``out`` (created if needed; sub-
    directories kept; existing files of the same name replaced, each by :func:`os.replace`); on any
    error the staging directory is removed and ``out`` is left as it was. So a command that fails
    after its work started (a plot that cannot be drawn, a summary that cannot be computed) leaves
    no partial output.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", where=str(out))
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = parent / f".{out.name}.{secrets.token_hex(6)}.partial"
        stage.mkdir()
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror or exc}", where=str(parent)) from exc
    try:
        yield stage
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        for f in files:
            target = out / f.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def to_jsonable(x: Any) -> Any:
    """Turn numpy scalars/arrays and paths into JSON-ready values (NaN/inf become null)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if np.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig, path: str | os.PathLike[str], dpi: int = 110, *, make_dirs: bool = True) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, PNG without one); return the path."""
    path = Path(path)
    with atomic_path(path, make_dirs=make_dirs) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path

