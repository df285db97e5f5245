"""Anonymisation checked by an independent tool (pycanon) for the k and l claimed; unusual
values top-coded; the risk measures and information loss as defined."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pycanon import anonymity

from kiban.privacy import anonymise

QUASI = ["age", "sex", "town_code", "household_size", "resident_years"]


def population(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    towns = np.array([f"{i:04d}{j:03d}" for i in range(1, 9) for j in range(1, 6)])
    return {
        "age": np.clip(rng.normal(45, 22, n).astype(int), 0, 108),
        "sex": rng.integers(1, 3, n).astype(str),
        "town_code": towns[rng.zipf(1.4, n) % len(towns)],
        "household_size": np.clip(rng.poisson(1.5, n) + 1, 1, 12),
        "resident_years": np.clip(rng.exponential(12, n).astype(int), 0, 90),
        "nationality": rng.choice(["日本", "中国", "韓国", "ベトナム", "フィリピン"], n,
                                  p=[0.6, 0.1, 0.1, 0.1, 0.1]),
    }


def anonymiser(data: dict[str, np.ndarray]) -> anonymise.Anonymiser:
    hs = [anonymise.numeric("age", data["age"], (5, 10, 20)),
          anonymise.flat("sex", data["sex"]),
          anonymise.prefixes("town_code", data["town_code"], (4,)),
          anonymise.numeric("household_size", data["household_size"], (2, 4)),
          anonymise.numeric("resident_years", data["resident_years"], (5, 10, 20))]
    return anonymise.Anonymiser(hs, data["nationality"])


@pytest.mark.parametrize(("k", "l"), [(5, 2), (10, 3)])
def test_output_is_k_anonymous_and_l_diverse_by_pycanon(k: int, l: int) -> None:  # noqa: E741
    data = population(20_000)
    result = anonymiser(data).run(k, l)
    frame = pd.DataFrame({q: result.columns[q] for q in QUASI})
    frame["nationality"] = data["nationality"][result.kept]
    assert anonymity.k_anonymity(frame, QUASI) >= k
    assert anonymity.l_diversity(frame, QUASI, ["nationality"]) >= l
    assert result.risk["k"] >= k
    assert result.loss["suppressed_share"] <= 0.05
    assert 0 < result.loss["generalisation_lm"] < 1


def test_unusual_ages_are_top_coded() -> None:
    ages = np.array([30] * 995 + [104, 106, 110, 115, 120])
    h = anonymise.numeric("age", ages, (5,), top_quantile=0.995)
    assert h.coded["top_coded"] >= 4
    labels = np.asarray(h.labels[0], dtype=object)[h.luts[0][h.base]]
    assert "120" not in set(labels) and any(str(x).endswith("以上") for x in labels)


def test_search_beats_the_single_pass_baseline_on_information_loss() -> None:
    an = anonymiser(population(20_000))
    best = an.run(10, 2)
    levels, ev = an.single_pass([2, 1, 1, 1, 2], 10, 2)
    baseline = an.result(levels, ev, 10, 2, 0)
    assert best.loss["total_lm"] < baseline.loss["total_lm"]


def test_risk_models() -> None:
    # Release: classes of 2 and 3 records; population: the same classes, of 4 and 6.
    released = np.array([1, 1, 2, 2, 2])
    population_keys = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    r = anonymise.risk(released, population_keys, threshold=0.4)
    assert r["k"] == 2 and r["classes"] == 2
    assert r["prosecutor"]["highest"] == pytest.approx(0.5)
    assert r["prosecutor"]["share_at_risk"] == pytest.approx(0.4)  # the class of 2
    assert r["journalist"]["highest"] == pytest.approx(0.25)
    assert r["journalist"]["share_at_risk"] == 0
    assert r["marketer"]["expected_share"] == pytest.approx((2 / 4 + 3 / 6) / 5)


def test_impossible_k_is_infeasible() -> None:
    data = {k: v[:8] for k, v in population(8).items()}
    with pytest.raises(anonymise.Infeasible):
        anonymiser(data).run(10, 1)
