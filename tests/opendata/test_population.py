"""The generated dataset 地域・年齢別人口: small cells suppressed, and the cells that would give
them away by subtraction too (pure, with Hypothesis), then generated from the registry
(through its service) and published, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiban.core.errors import ValidationFailed
from kiban.opendata import model
from kiban.opendata.service import OpenData
from kiban_testkit import LG_A, World, move_in_data, person


def _recoverable(table: model.PopulationTable) -> set[tuple[str, int | str, str]]:
    """What an attacker recovers by solving published sums with one unknown, repeatedly."""
    known = {k for k in table.values if k not in table.suppressed}
    changed = True
    while changed:
        changed = False
        for total, parts in table.relations():
            unknown = [c for c in (total, *parts) if c not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                changed = True
    return table.suppressed & known


def test_small_cells_and_their_complements_are_suppressed() -> None:
    counts = [("A", 0, "1", 3), ("A", 0, "2", 7), ("A", 5, "1", 10), ("A", 5, "2", 12),
              ("B", 0, "1", 20), ("B", 0, "2", 9), ("B", 5, "1", 8), ("B", 5, "2", 30)]
    table = model.population_table(counts, threshold=5)
    assert ("A", 0, "男") in table.suppressed  # 3 < 5: primary
    # 総数 = 男 + 女 for A 0-4 would give 男 away unless another cell of that sum is hidden
    assert ("A", 0, "女") in table.suppressed or ("A", 0, "総数") in table.suppressed
    assert not _recoverable(table)
    records = model.population_records(table, lgcode="131016", municipality="東京都千代田区",
                                       as_of="2026-04-01", area_names={"A": "本町", "B": "緑町"})
    hidden = [r for r in records if r["男"] is None]
    assert hidden and all(r["備考"] == "秘匿あり" for r in hidden)
    shown = [v for r in records for v in (r["総数"], r["男"], r["女"]) if v is not None]
    assert not any(0 < v < 5 for v in shown)
    whole = next(r for r in records if r["地域名"] == "全域" and r["年齢"] == "計")
    assert whole["総数"] == sum(n for *_, n in counts)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["T1", "T2", "T3", "T4"]),
                          st.sampled_from([0, 5, 10, 65, 100]), st.sampled_from(["1", "2"]),
                          st.integers(min_value=1, max_value=40)), min_size=1, max_size=30),
       st.integers(min_value=2, max_value=10))
def test_no_suppressed_cell_can_be_recovered_from_the_sums(
        counts: list[tuple[str, int, str, int]], threshold: int) -> None:
    table = model.population_table(counts, threshold)
    assert all(not 0 < v < threshold for k, v in table.values.items()
               if k not in table.suppressed)
    assert not _recoverable(table)


def test_generated_from_the_registry_and_published(world: World) -> None:
    registry = world.svc.registry
    registry.move_in(world.clerk_a, LG_A, move_in_data())  # two residents in 本町一丁目
    big = move_in_data(address={"town_code": "0002001", "banchi": "3番地", "katagaki": ""},
                       members=[person(given_name=f"子{i}", given_kana="コ", sex="1",
                                       relationship="世帯主" if i == 0 else "子",
                                       birth_date="1980-05-05") for i in range(6)])
    registry.move_in(world.clerk_a, LG_A, big)
    svc = OpenData(world.svc.db, world.svc.clock)
    done = svc.generate_population(LG_A)
    assert done.dataset_id == "131016-population-by-area-age" and done.version == 1
    meta, rows = svc.records(done.dataset_id)
    assert meta["published_by"] == "system:population" and meta["schema_version"] == "1.1.0"
    by_id = {r["ID"]: r for r in rows}
    assert by_id["131016-total"]["総数"] == 8  # the municipality's whole population is shown
    # 本町一丁目 has two people (one per sex) aged 40-49: hidden, nothing 1..4 shown anywhere
    assert by_id["0001001-total"]["総数"] is None and by_id["0001001-total"]["備考"] == "秘匿あり"
    shown = [v for r in rows for v in (r["総数"], r["男"], r["女"]) if v is not None]
    assert not any(0 < v < model.SUPPRESSION_THRESHOLD for v in shown)
    # Shown counts are the registry's; which complements hide a 6 or 7 is the algorithm's.
    assert by_id["131016-45"]["男"] in (7, None) and by_id["0002001-45"]["男"] in (6, None)
    assert by_id["131016-40"]["女"] is None  # the wife, alone in her band and sex
    assert by_id["0002001-45"]["地域名"] == "緑町一丁目"
    assert svc.generate_population(LG_A).version == 2  # the schedule adds versions
    with pytest.raises(ValidationFailed) as bad:
        svc.generate_population(LG_A, threshold=1)
    assert bad.value.field == "threshold"
