"""`batch_store.bulk_insert_columns` (column by column; on PostgreSQL one `INSERT … SELECT FROM
unnest(arrays)` with binary parameters) stores exactly what the row-by-row `bulk_insert`
stores: JSON with Japanese text and quotes, NULLs, timestamps, big integers; on SQLite and
PostgreSQL (row-level security applies: the tenant's own connection)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from kiban.tax import batch_store as st
from kiban_testkit import LG_A, World

NOW = datetime(2026, 4, 1, 10, 30, 15, 123456, tzinfo=UTC)


def _rows(prefix: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(5):
        rows.append({
            "lgcode": LG_A, "assessment_id": f"{prefix}{i:031d}", "version": 1 + i % 2,
            "input": {"taxpayer": {"family_name": "山田\"'\\", "given_name": "花子{,}",
                                   "address": {"katagaki": None}},
                      "income": {"salary_revenue": 5_000_000 + i}, "dependants": [],
                      "spouse": None},
            "collection": {"method": "special" if i % 2 else "ordinary"},
            "options_key": "k" * 32, "input_hash": f"{i:064d}",
            "total": 2**40 + i, "income_levy_municipal": i, "income_levy_prefectural": 0,
            "per_capita_municipal": 3000, "per_capita_prefectural": 1000,
            "forest_environment_tax": 1000, "taxable_income": 0, "total_income": -5,
            "non_taxable": "none", "reason": None if i % 2 else "所得資料の訂正等による更正",
            "previous_total": None if i % 2 else 12_300, "run_id": "r" * 32,
            "created_at": NOW, "created_by": "system"})
    return rows


def _read(world: World, prefix: str) -> list[tuple[Any, ...]]:
    c = st.versions.c
    with world.svc.db.tenant(LG_A) as conn:
        found = conn.execute(select(st.versions).where(c.assessment_id.like(f"{prefix}%"))
                             .order_by(c.assessment_id)).all()
    return [tuple(row)[:1] + tuple(row)[2:] for row in found]  # the ids differ by prefix


def test_columns_write_what_rows_write(world: World) -> None:
    by_rows, by_columns = _rows("a"), _rows("b")
    with world.svc.db.unit_of_work(LG_A) as conn:
        st.bulk_insert(conn, st.versions, by_rows)
        st.bulk_insert_columns(conn, st.versions, {
            name: st.Same(by_columns[0][name]) if name in ("lgcode", "created_at")
            else [row[name] for row in by_columns] for name in by_columns[0]})
        st.bulk_insert_columns(conn, st.versions, {"lgcode": st.Same(LG_A),
                                                   "assessment_id": []})  # nothing to write
    written = _read(world, "b")
    assert written == _read(world, "a") and len(written) == 5
    assert written[0][2]["taxpayer"]["family_name"] == "山田\"'\\"
