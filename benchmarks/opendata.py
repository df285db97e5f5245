"""Benchmark of the open-data API (issue 8): `package_search` and `datastore_search` requests
per second and p99 latency over 1,000 datasets and 1,000,000 records (target: p99 at most
50 ms), each beside a baseline measured in the same run: the bare SQL query of the same data
(the same filter, count and page straight on the database, no HTTP, no JSON envelope).

SQLite in a temporary directory (the embedded default). The data is written straight into the
tables (publishing validation is not what is measured). Requests go through the whole ASGI
app in process (Starlette's TestClient), sequentially, on one core.

    .venv/bin/python benchmarks/opendata.py [--datasets 1000] [--records 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, text

from kiban.core.checkdigits import lgcode_check_digit
from kiban.core.clock import SystemClock
from kiban.opendata import model, store
from kiban.opendata.service import OpenData
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.platform.tenants import Municipalities
from kiban.web.app import create_app

TOWNS = ("丸の内", "大手町", "有楽町", "永田町", "麹町", "九段北", "飯田橋", "神保町")


def load(db: Database, datasets: int, records: int) -> list[str]:
    """`datasets` AED datasets, one per municipality, `records` records in all."""
    now = datetime.now(UTC)
    schema = model.load_schemas()["aed_locations"]
    columns = json.dumps(schema.field_names, ensure_ascii=False)
    rng = random.Random(8)
    munis = Municipalities(db, lambda *_: [])
    # One standard dataset per municipality and schema: 1,000 datasets, 1,000 municipalities.
    codes = [f"{10000 + i:05d}" for i in range(datasets)]
    codes = [c + str(lgcode_check_digit(c)) for c in codes]
    for code in codes:
        munis.create(code, f"市{code}", "東京都", now)
    ids = [f"{code}-aed-locations" for code in codes]
    per = records // datasets
    with db.platform() as conn:
        conn.execute(insert(store.opendata_datasets), [
            {"id": d, "lgcode": codes[i], "schema_name": "aed_locations",
             "title": f"{TOWNS[i % 8]} AED設置箇所一覧 {i}", "notes": "AED の設置場所",
             "category": "health", "current_version": 1, "created_at": now, "updated_at": now}
            for i, d in enumerate(ids)])
        conn.execute(insert(store.opendata_versions), [
            {"dataset_id": d, "version": 1, "schema_version": "1.0.0", "columns": columns,
             "extra_columns": "[]", "row_count": per, "encoding": "utf-8", "sha256": "0" * 64,
             "filename": "", "published_by": "bench", "published_at": now} for d in ids])
    batch: list[dict[str, Any]] = []
    for i, d in enumerate(ids):
        code = codes[i]
        for row in range(1, per + 1):
            batch.append({"dataset_id": d, "version": 1, "row": row, "data": json.dumps({
                "全国地方公共団体コード": code, "ID": f"AED{row:05d}", "地方公共団体名": "東京都",
                "名称": f"{TOWNS[row % 8]}施設{row}", "名称_カナ": "シセツ",
                "住所": f"東京都{TOWNS[row % 8]}{row}", "緯度": round(35.6 + rng.random() / 10, 5),
                "経度": round(139.7 + rng.random() / 10, 5), "設置位置": "1階",
                "小児対応設備の有無": rng.choice(("有", "無"))}, ensure_ascii=False)})
            if len(batch) >= 20_000:
                with db.platform() as conn:
                    conn.execute(insert(store.opendata_records), batch)
                batch = []
    if batch:
        with db.platform() as conn:
            conn.execute(insert(store.opendata_records), batch)
    return ids


def timed(call: Callable[[int], object], n: int) -> tuple[float, float, float]:
    """(requests per second, median ms, p99 ms) over n sequential calls."""
    for i in range(5):
        call(i)  # warm up
    times = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - started
    times.sort()
    return n / total, statistics.median(times), times[min(n - 1, int(n * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_module.load({"KIBAN_DATABASE_URL": f"sqlite:///{Path(tmp) / 'b.db'}",
                                         "KIBAN_MODE": "test"})
        upgrade(settings)
        db = Database(settings)
        t = time.perf_counter()
        ids = load(db, args.datasets, args.records)
        print(f"loaded {args.datasets} datasets, {args.records} records in "
              f"{time.perf_counter() - t:.1f} s")
        app = create_app(settings, SystemClock(), db)
        svc = OpenData(db, SystemClock())
        svc.anonymous_per_minute = 10**9  # measure the API, not the limiter's refusals
        app.state.opendata = svc
        rng = random.Random(1)
        picks = [rng.choice(ids) for _ in range(args.requests + 5)]
        town = [TOWNS[i % 8] for i in range(args.requests + 5)]
        d = store.opendata_datasets.c
        with TestClient(app) as client:
            def package_search(i: int) -> None:
                got = client.get("/api/3/action/package_search",
                                 params={"q": town[i], "rows": 10, "sort": "name asc"})
                assert got.status_code == 200

            def bare_package(i: int) -> None:
                like = f"%{town[i]}%"
                with db.platform() as conn:
                    where = d.title.like(like)
                    conn.execute(select(func.count()).select_from(store.opendata_datasets)
                                 .where(where)).scalar_one()
                    list(conn.execute(select(store.opendata_datasets).where(where)
                                      .order_by(d.id).limit(10)))

            def datastore_search(i: int) -> None:
                got = client.get("/api/3/action/datastore_search", params={
                    "resource_id": f"{picks[i]}-csv", "filters": '{"小児対応設備の有無": "有"}',
                    "sort": "緯度 desc", "limit": 20, "offset": 20})
                assert got.status_code == 200

            def bare_datastore(i: int) -> None:
                with db.platform() as conn:
                    where = ("dataset_id = :d AND version = 1 AND "
                             "CAST(data ->> '小児対応設備の有無' AS TEXT) = '有'")
                    conn.execute(text(f"SELECT count(*) FROM opendata_records WHERE {where}"),
                                 {"d": picks[i]}).scalar_one()
                    list(conn.execute(text(f"SELECT row, data FROM opendata_records WHERE {where} "
                                           "ORDER BY data ->> '緯度' DESC LIMIT 20 OFFSET 20"),
                                      {"d": picks[i]}))

            rows = [("package_search (HTTP)", timed(package_search, args.requests)),
                    ("  baseline: bare SQL", timed(bare_package, args.requests)),
                    ("datastore_search (HTTP)", timed(datastore_search, args.requests)),
                    ("  baseline: bare SQL", timed(bare_datastore, args.requests))]
        db.dispose()
    print(f"{'figure':28} {'req/s':>8} {'median ms':>10} {'p99 ms':>8}  target p99 <= 50 ms")
    for name, (rps, median, p99) in rows:
        verdict = "" if name.startswith("  ") else ("met" if p99 <= 50 else "NOT met")
        print(f"{name:28} {rps:8.0f} {median:10.2f} {p99:8.2f}  {verdict}")
    for (name, (_, _, p99)), (_, (_, _, base)) in ((rows[0], rows[1]), (rows[2], rows[3])):
        print(f"{name}: p99 is {p99 / base:.1f}x the bare query's")


if __name__ == "__main__":
    main()
