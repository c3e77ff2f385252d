"""Faults of a running lab, under counted load through nginx (lab.load):

- kill -9 of one framework's server from the host (as the kernel's OOM killer or a crash would:
  `docker kill` would count as a manual stop and disable the restart policy): the engine starts
  it again by itself, it is healthy and serving again, and every other framework loses nothing.
- PostgreSQL restarted, and stopped for a while then started: every framework's /db serves
  again by itself, without a restart of its own container.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lab.load import CountedLoad, Tally
from tests.faults.conftest import APPS, PORT, container, life, wait_health

pytestmark = pytest.mark.integration

RECOVER_S = 60  # the most a fault may take to heal before the case fails
QUIET_S = 3  # load that must pass without a failure once a fault healed
DB = {app: f"/{app}/db" for app in APPS}


def warm(load: CountedLoad) -> None:
    """Every URL answered a few times before the fault (so a failure is the fault's)."""
    assert load.wait(lambda t: all(x.ok >= 5 for x in t.values()), timeout=30), load.tallies()
    assert all(t.failed == 0 for t in load.tallies().values()), load.tallies()


def recovered_at(tally: Tally, fault_at: float) -> float | None:
    """The first 200 after the last failure; with no failure, the first 200 after the fault."""
    return tally.recovered if tally.failed else tally.first_ok_after(fault_at)


def quiet_since(tally: Tally, since: float) -> float:
    """When the URL's last failure after `since` was (or `since`)."""
    return max(since, tally.last_failure or since)


def settled(load: CountedLoad, paths: list[str], since: float) -> bool:
    """Each path answered 200 after `since` and has had no failure for QUIET_S seconds."""
    tallies = load.tallies()
    now = load.now()
    for path in paths:
        tally = tallies[path]
        calm = quiet_since(tally, since)
        if tally.last_ok is None or tally.last_ok <= calm or now - calm < QUIET_S:
            return False
    return True


@pytest.mark.parametrize("victim", APPS)
def test_kill_9_of_an_app_under_load(engine, healthy_lab, fault_table, victim):
    others = [a for a in APPS if a != victim]
    restarts, started = life(engine, victim)
    others_before = {a: life(engine, a) for a in others}
    with CountedLoad(PORT, DB.values(), connections=2, duration=RECOVER_S + 60, pause=0.01) as load:
        warm(load)
        pid = container(engine, victim).attrs["State"]["Pid"]
        assert Path(f"/proc/{pid}").exists(), "kill -9 from the host needs the engine on this machine"
        killed_at = load.now()
        os.kill(pid, signal.SIGKILL)
        restarted = load.wait(lambda _: life(engine, victim)[0] > restarts, timeout=RECOVER_S)
        health = wait_health(engine, victim, RECOVER_S)
        healthy_at = load.now()
        back = load.wait(lambda _: settled(load, [DB[victim]], killed_at), timeout=RECOVER_S)
    tallies = load.tallies()
    hit = tallies[DB[victim]]
    recovery = recovered_at(hit, killed_at) or load.now()
    fault_table.add(
        f"kill -9 of {victim} under load",
        "restarted by the engine, healthy, others lose 0",
        f"restarted {restarted}, {health} after {healthy_at - killed_at:.1f} s; "
        f"others lost {sum(tallies[DB[a]].failed for a in others)}; {hit.reasons() or 'no error'}",
        recovery - killed_at,
        hit.failed,
    )
    assert restarted, f"{victim} was not restarted by the engine within {RECOVER_S}s (restart policy?)"
    assert life(engine, victim)[1] != started
    assert health == "healthy", f"{victim} is {health} {RECOVER_S}s after kill -9"
    assert back, f"{victim}/db does not answer 200 steadily after its restart: {hit}"
    for app in others:
        assert tallies[DB[app]].failed == 0, f"{app} lost requests while {victim} was killed: {tallies[DB[app]]}"
        assert tallies[DB[app]].ok > 0
        assert life(engine, app) == others_before[app], f"{app} was restarted too"


@pytest.mark.parametrize("down_s", [0, 10], ids=["restart", "down-10s"])
def test_postgres_restart_under_load(engine, healthy_lab, fault_table, down_s):
    database = container(engine, "postgres")
    before = {a: life(engine, a) for a in APPS}
    with CountedLoad(PORT, DB.values(), connections=1, duration=RECOVER_S + 60, pause=0.01) as load:
        warm(load)
        fault_at = load.now()
        if down_s:
            database.stop(timeout=10)
            time.sleep(down_s)
            database.start()
        else:
            database.restart(timeout=10)
        back_at = load.now()
        db_health = wait_health(engine, "postgres", RECOVER_S)
        recovered = load.wait(lambda _: settled(load, list(DB.values()), back_at), timeout=RECOVER_S)
    tallies = load.tallies()
    fault = "PostgreSQL restart during load" if not down_s else f"PostgreSQL down {down_s} s during load"
    for app, path in DB.items():
        tally = tallies[path]
        recovery = recovered_at(tally, fault_at) or load.now()
        fault_table.add(
            f"{fault}: {app} /db",
            "serves again by itself, its container not restarted",
            f"{tally.failed} failed ({', '.join(f'{k} ×{v}' for k, v in tally.reasons().items()) or 'none'}); "
            f"restarted: {life(engine, app) != before[app]}",
            recovery - fault_at,
            tally.failed,
        )
    assert db_health == "healthy", f"postgres is {db_health} after its restart"
    late = {a: tallies[p] for a, p in DB.items() if not settled(load, [p], back_at)}
    assert recovered, f"/db did not recover within {RECOVER_S}s after postgres came back: {late}"
    for app in APPS:
        assert life(engine, app) == before[app], f"{app}'s container was restarted: it did not recover by itself"
        assert wait_health(engine, app, RECOVER_S) == "healthy", f"{app} is not healthy again"
