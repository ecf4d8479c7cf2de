"""Argument checks and inputs shared by the command-line verbs."""

from __future__ import annotations

import argparse

from journeysim.errors import InputError


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} must be > 0")
    return v


def non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 0")
    return v




def load_inputs(args):
    from journeysim.inference.posterior import load_fit
    from journeysim.io.observed import read_observed
    from journeysim.model.scenario import load_scenario

    sc = load_scenario(args.scenario)
    data_path = args.data or (str(sc.base_dir / sc.spec.data) if sc.spec.data else None)
    if data_path is None:
        raise InputError("no observed data: pass --data CSV or set data: in the scenario", str(args.scenario))
    data = read_observed(data_path, sc)
    fit = load_fit(args.posterior, sc) if getattr(args, "posterior", None) else None
    return sc, data, fit


def executor_from_args(args):
    return getattr(args, "scheduler", None) or (f"local:{args.workers}" if getattr(args, "workers", None) else None)
