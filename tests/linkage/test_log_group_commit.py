"""The log's group commit (issue 6 performance): exchanges answered concurrently are written in
shared transactions, yet every answered exchange has its own leaf, the leaves are contiguous
and the log verifies; a failed write logs none of its batch and leaves the tree as it was; an
exchange run inside a caller's unit of work is logged in that unit."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from linkage_kit import INSURER, ITEM, JUMIN_A, PROCEDURE, Setup, build
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kiban.linkage import store
from kiban.linkage.client import InProcessClient
from kiban_testkit import LG_A, World


def test_concurrent_exchanges_each_get_their_own_leaf(world: World) -> None:
    setup = build(world)
    hub = setup.hub
    client = InProcessClient(hub, INSURER)
    client.key = setup.insurer.key
    results: list[Any] = []
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            for _ in range(n):
                results.append(client.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(5,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 30 and all(r.ok for r in results)
    assert sorted(r.leaf_index for r in results) == list(range(30))
    assert hub.verify_log() == [] and hub.sth()["tree_size"] == 30
    # Each one is in the resident's view (a row under row-level security on PostgreSQL).
    seen = hub.exchanges_of_resident(LG_A, setup.resident_id)["exchanges"]
    assert sorted(e["leaf_index"] for e in seen) == list(range(30))
    assert all(e["verified"] for e in seen)


def test_a_failed_write_logs_nothing_and_the_next_exchange_takes_its_place(
        sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    setup: Setup = build(sqlite_world)
    hub = setup.hub
    client = InProcessClient(hub, INSURER)
    client.key = setup.insurer.key
    assert client.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).leaf_index == 0
    engine = hub.db.engine
    real_begin = engine.begin

    def broken() -> Any:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(engine, "begin", broken)
    with pytest.raises(OperationalError):
        client.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code)
    monkeypatch.setattr(engine, "begin", real_begin)
    assert client.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).leaf_index == 1
    assert hub.verify_log() == [] and hub.sth()["tree_size"] == 2


def test_an_exchange_inside_a_callers_unit_of_work_is_logged_in_it(sqlite_world: World) -> None:
    setup = build(sqlite_world)
    hub = setup.hub
    client = InProcessClient(hub, INSURER)
    client.key = setup.insurer.key
    db = sqlite_world.svc.db
    # The caller holds SQLite's write lock (it has written) while it asks the hub: a separate
    # transaction for the log would wait on it.
    with db.unit_of_work(LG_A) as conn:
        conn.execute(store.linkage_services.insert().values(member_id=INSURER, item="test/item",
                                                             description="written first"))
        result = client.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code)
        assert result.ok and result.leaf_index == 0
    with db.platform() as conn:
        logged = conn.execute(select(store.linkage_log.c.leaf_index)).scalars().all()
    assert logged == [0] and hub.verify_log() == []
