"""Property tests of the scenario boundary (issue 19): malformed scenario files never get through.

Each example takes the shop example, breaks one thing (a number made NaN, infinite or text, a key
misspelt, a value of the wrong type) and runs ``journeysim validate`` and ``journeysim run`` on it:
exit status 2, one line naming the file and the key, no traceback, nothing written.
"""

from __future__ import annotations

import math
import shutil

import pytest
import yaml
from conftest import SCENARIOS, check_refused
from hypothesis import HealthCheck, given, settings, strategies as st

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

RAW = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())

#: Mappings whose keys are the user's names (channels, stages, transitions, priors), not schema keys.
NAMED = {"channels", "personas", "effects", "initial", "stages", "priors", "rates", "affinity", "from"}


def leaves(x, path=()):
    """Paths of the numeric leaves of a YAML document."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, path + (i,))
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path


def schema_keys(x, path=()):
    """Paths of the keys a schema defines (a misspelling of one is an unknown key)."""
    if isinstance(x, dict):
        for k, v in x.items():
            if not (path and path[-1] in NAMED):
                yield path + (k,)
            yield from schema_keys(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from schema_keys(v, path + (i,))


NUMBERS = sorted(leaves(RAW), key=str)
KEYS = sorted((p for p in schema_keys(RAW) if p[0] not in ("fit",)), key=str)


def put(doc, path, value):
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value


def rename(doc, path, new):
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[new] = cur.pop(path[-1])


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_scenario")
    shutil.copytree(SCENARIOS, d / "scenarios")
    return d / "scenarios"




def copy():
    return yaml.safe_load(yaml.safe_dump(RAW))


@SETTINGS
@given(path=st.sampled_from(NUMBERS), bad=st.sampled_from([math.nan, math.inf, -math.inf, "many", [1, 2], {"a": 1}]))
def test_a_broken_number_is_refused(path, bad, shop_dir, capsys, tmp_path_factory):
    doc = copy()
    put(doc, path, bad)
    f = shop_dir / "broken.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True))
    leaf = str(path[-1]) if not isinstance(path[-1], int) else str(path[-2])
    check_refused(["validate", f], capsys, str(f), leaf)
    out = tmp_path_factory.mktemp("out") / "run"
    check_refused(["run", f, "--engine", "twin", "--weeks", "2", "--out", out, "--quiet"], capsys, str(f))
    assert not out.exists()


@SETTINGS
@given(path=st.sampled_from(KEYS), extra=st.sampled_from(["x", "_", "s", "0"]))
def test_a_misspelt_key_is_refused_with_its_name(path, extra, shop_dir, capsys):
    doc = copy()
    new = f"{path[-1]}{extra}"
    rename(doc, path, new)
    f = shop_dir / "misspelt.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True))
    check_refused(["validate", f], capsys, str(f), new)


@SETTINGS
@given(name=st.sampled_from(sorted(RAW["priors"])),
       text=st.sampled_from(["lognormal(nan, 1)", "lognormal(0.01, inf)", "lognormal(0.01, -1)", "lognorml(0.01, 1)",
                             "beta(0, 1)", "normal(1)", "gamma(1, x)", "uniform(2, 1)", "fixed(nan)", "0.5", "",
                             "lognormal(0.01, 1) + 1"]))
def test_a_broken_prior_is_refused(name, text, shop_dir, capsys):
    doc = copy()
    doc["priors"][name] = text
    f = shop_dir / "prior.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True))
    check_refused(["validate", f], capsys, str(f), f"priors.{name}")
