"""Tenant isolation in the database itself: PostgreSQL row-level security, tested as the
application role (which owns nothing and is no superuser), so the policies really apply."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from kiban_testkit import LG_A, LG_B, World, move_in_data


def test_app_role_is_not_owner_nor_superuser(pg_world: World) -> None:
    with pg_world.svc.db.engine.connect() as conn:
        me = conn.execute(text("SELECT current_user, usesuper FROM pg_user "
                               "WHERE usename = current_user")).one()
        owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                  "WHERE tablename = 'residents'")).scalar_one()
        bypass = conn.execute(text("SELECT rolbypassrls FROM pg_roles "
                                   "WHERE rolname = current_user")).scalar_one()
    assert me.current_user == "kiban_app" and not me.usesuper
    assert owner != "kiban_app" and not bypass


def test_each_municipality_sees_only_its_rows(pg_world: World) -> None:
    reg = pg_world.svc.registry
    reg.move_in(pg_world.clerk_a, LG_A, move_in_data())
    reg.move_in(pg_world.clerk_b, LG_B, move_in_data())
    db = pg_world.svc.db
    with db.tenant(LG_A) as conn:
        codes = set(conn.execute(text("SELECT DISTINCT lgcode FROM residents")).scalars())
        assert codes == {LG_A}
        ledger_codes = set(conn.execute(text("SELECT DISTINCT lgcode FROM ledger_entries"))
                           .scalars())
        assert ledger_codes == {LG_A}
        # Even asking by B's code directly returns nothing.
        assert conn.execute(text("SELECT count(*) FROM residents WHERE lgcode = :b"),
                            {"b": LG_B}).scalar_one() == 0
    with db.platform() as conn:  # no municipality set: no personal data at all
        assert conn.execute(text("SELECT count(*) FROM residents")).scalar_one() == 0


def test_writing_another_municipalitys_rows_is_refused(pg_world: World) -> None:
    reg = pg_world.svc.registry
    reg.move_in(pg_world.clerk_b, LG_B, move_in_data())
    db = pg_world.svc.db
    with db.tenant(LG_A) as conn:
        changed = conn.execute(text("UPDATE residents SET family_name = 'x' "
                                    "WHERE lgcode = :b"), {"b": LG_B}).rowcount
        assert changed == 0
        deleted = conn.execute(text("DELETE FROM households WHERE lgcode = :b"),
                               {"b": LG_B}).rowcount
        assert deleted == 0
    with pytest.raises(ProgrammingError, match="row-level security"), db.tenant(LG_A) as conn:
        conn.execute(text("INSERT INTO counters (lgcode, name, value) VALUES (:b, 'x', 1)"),
                     {"b": LG_B})


def test_partitions_and_ledger_history_are_out_of_reach(pg_world: World) -> None:
    pg_world.svc.registry.move_in(pg_world.clerk_a, LG_A, move_in_data())
    db = pg_world.svc.db
    with pytest.raises(DBAPIError, match="permission denied"), db.tenant(LG_A) as conn:
        conn.execute(text("SELECT count(*) FROM residents_p0"))
    with pytest.raises(DBAPIError, match="permission denied"), db.tenant(LG_A) as conn:
        conn.execute(text("UPDATE ledger_entries SET actor = 'x'"))
    with pytest.raises(DBAPIError, match="permission denied"), db.tenant(LG_A) as conn:
        conn.execute(text("DELETE FROM ledger_entries"))


def test_personal_data_tables_are_partitioned_by_lgcode(pg_world: World) -> None:
    with pg_world.svc.db.admin_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c "
            "JOIN pg_partitioned_table p ON p.partrelid = c.oid")).all()
    keys = dict(rows)
    for table in ("residents", "households", "change_events", "ledger_entries"):
        assert keys[table] == "HASH (lgcode)"
