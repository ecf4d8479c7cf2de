"""Executors: spec parsing, the default, input order, errors, worker death, Dask (a real LocalCluster).

Worker processes are started with ``spawn`` and import this module to find the task functions
below (the parent's ``sys.path``, which holds ``tests/``, is passed to them).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from journeysim._util.cpu import default_workers
from journeysim.errors import InputError, JourneysimError
from journeysim.scale.base import WorkerLostError
from journeysim.scale.dask_backend import DaskExecutor
from journeysim.scale.executor import get_default, get_executor, set_default
from journeysim.scale.local import InProcessExecutor, LocalExecutor

# ---------------------------------------------------------------------------------------------
# task functions (top level: sent to worker processes by reference)


def square_after_nap(x: int) -> int:
    """Later inputs finish first (shorter naps), so completion order differs from input order."""
    time.sleep(0.02 * (6 - x % 6))
    return x * x


def pid(_: int) -> int:
    return os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def die_once(task: tuple[int, str]) -> int:
    """Task 3 kills its worker process the first time it runs (a marker file says it has)."""
    x, marker = task
    if x == 3:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    return 10 * x


def always_die(x: int) -> int:
    os._exit(1)


# ---------------------------------------------------------------------------------------------
# specs and the default


def test_specs_make_the_named_executor_and_share_it():
    assert isinstance(get_executor("inline"), InProcessExecutor)
    loc = get_executor("local:3")
    assert isinstance(loc, LocalExecutor) and loc.workers == 3
    assert get_executor(" LOCAL:3 ") is loc  # same spec, same (warm) executor
    assert get_executor("local").workers == default_workers()
    d = get_executor("tcp://127.0.0.1:8786")  # no connection until used
    assert isinstance(d, DaskExecutor) and d.address == "tcp://127.0.0.1:8786"
    assert isinstance(get_executor("dask:2"), DaskExecutor) and get_executor("dask:2").n_workers == 2
    mine = InProcessExecutor()
    assert get_executor(mine) is mine


@pytest.mark.parametrize("spec, message", [
    ("locla", "unknown executor 'locla' (did you mean 'local'?)"),
    ("local:0", "'local:0': write local:N with N a whole number"),
    ("local:two", "write local:N"),
    ("dask:-1", "write dask:N"),
    ("http://host:8786", "unknown executor"),
])
def test_bad_specs_are_named(spec, message):
    with pytest.raises(InputError, match="--scheduler") as err:
        get_executor(spec, where="--scheduler")
    assert message in str(err.value)
    with pytest.raises(InputError):
        set_default(spec)


def test_default_follows_set_default_then_environment_then_work_size(monkeypatch):
    monkeypatch.delenv("JOURNEYSIM_EXECUTOR", raising=False)
    assert get_default() is None
    assert isinstance(get_executor(work_seconds=0.5), InProcessExecutor)  # tiny job: no pool
    assert isinstance(get_executor(work_seconds=60), LocalExecutor)
    assert isinstance(get_executor(), LocalExecutor)
    monkeypatch.setenv("JOURNEYSIM_EXECUTOR", "local:2")
    assert get_executor(work_seconds=0.5) is get_executor("local:2")
    try:
        set_default("inline")
        assert get_default() == "inline"
        assert isinstance(get_executor(work_seconds=60), InProcessExecutor)
        mine = InProcessExecutor()
        set_default(mine)
        assert get_executor() is mine
    finally:
        set_default(None)
    with pytest.raises(InputError, match="not an executor"):
        set_default(42)
    monkeypatch.setenv("JOURNEYSIM_EXECUTOR", "lokal")
    with pytest.raises(InputError, match="JOURNEYSIM_EXECUTOR: unknown executor 'lokal'"):
        get_executor()


def test_inline_map_keeps_order_reports_progress_and_names_failing_task():
    seen = []
    assert InProcessExecutor().map(square_after_nap, range(4), progress=lambda d, n: seen.append((d, n))) \
        == [0, 1, 4, 9]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(ValueError, match="three") as err:
        InProcessExecutor().map(fail_on_three, range(6))
    assert err.value.task_index == 3
    assert "(raised by task 3 of 6)" in err.value.__notes__


# ---------------------------------------------------------------------------------------------
# local worker processes


@pytest.fixture(scope="module")
def pool():
    """Two spawned worker processes, shared with the other test modules (kept warm)."""
    return get_executor("local:2")


def test_local_pool_runs_elsewhere_and_keeps_input_order(pool):
    xs = list(range(12))
    done = []
    got = pool.map(square_after_nap, xs, progress=lambda d, n: done.append(d))
    assert got == [x * x for x in xs]
    assert done == list(range(1, 13))
    # completion order is not input order, yet map returns input order
    order = [i for i, _ in pool.imap(square_after_nap, xs)]
    assert sorted(order) == xs
    pids = set(pool.map(pid, range(8)))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_local_pool_takes_lambdas_and_single_tasks(pool):
    assert pool.map(lambda x: x + 0.5, [1, 2, 3]) == [1.5, 2.5, 3.5]
    assert pool.map(pid, [0]) == [os.getpid()]  # one task runs here: no process to start
    assert pool.map(pid, []) == []


def test_local_pool_error_propagates_and_pool_survives(pool):
    with pytest.raises(ValueError, match="three is not allowed") as err:
        pool.map(fail_on_three, range(8))
    assert err.value.task_index == 3
    assert pool.map(abs, [-1, -2]) == [1, 2]


def test_local_pool_recovers_from_a_dead_worker(pool, tmp_path):
    tasks = [(x, str(tmp_path / "died")) for x in range(10)]
    got = pool.map(die_once, tasks)
    assert (tmp_path / "died").exists()  # task 3 did kill its worker once
    assert got == [10 * x for x in range(10)]
    assert pool.map(abs, [-3]) == [3]


def test_local_pool_gives_up_after_max_restarts():
    ex = LocalExecutor(2, max_restarts=1)
    try:
        with pytest.raises(WorkerLostError, match="died 2 times"):
            ex.map(always_die, range(4))
    finally:
        ex.close()


def test_unpicklable_function_is_an_input_error(pool):
    import threading

    lock = threading.Lock()
    with pytest.raises(InputError, match="cannot send"):
        pool.map(lambda x: lock, [1, 2])


# ---------------------------------------------------------------------------------------------
# Dask


def test_dask_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError, match=r"needs dask.distributed: pip install 'journeysim\[dask\]'"):
        DaskExecutor("tcp://127.0.0.1:1").map(abs, [1, 2])


def test_dask_unreachable_scheduler_is_named():
    pytest.importorskip("distributed")
    t0 = time.perf_counter()
    with pytest.raises(JourneysimError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1).map(abs, [1, 2])
    assert time.perf_counter() - t0 < 15


def test_dask_cluster_order_errors_and_dead_worker(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        ex = get_executor(client)
        assert isinstance(ex, DaskExecutor) and ex.workers == 2
        xs = list(range(10))
        assert ex.map(square_after_nap, xs) == InProcessExecutor().map(square_after_nap, xs)
        # tuples stay data (Dask would run a tuple starting with a function as a task)
        assert ex.map(len, [(abs, 1), (abs, 2, 3)]) == [2, 3]
        with pytest.raises(ValueError, match="three") as err:
            ex.map(fail_on_three, xs)
        assert err.value.task_index == 3
        before = set(client.run(os.getpid).values())
        got = ex.map(die_once, [(x, str(tmp_path / "died")) for x in xs])
        assert (tmp_path / "died").exists()
        assert got == [10 * x for x in xs]
        assert set(client.run(os.getpid).values()) != before  # the nanny replaced the dead worker
        ex.close()  # a client it was given stays open
        assert client.status == "running"
