"""Differentially private releases: the noise has the distribution claimed (checked
statistically), ε is certified by OpenDP's privacy map, and the budget is enforced in the
database, a release beyond it refused with the rule named."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from kiban.privacy import dp
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, World, bearer
from privacy.kit import import_population, make_staff

BASE = f"/api/v1/municipalities/{LG_A}/privacy"


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_count_noise_is_unbiased_with_the_laplace_spread(epsilon: float) -> None:
    n, true = 20_000, 100
    noisy, certified = dp.noisy_counts([true] * n, epsilon)
    errors = np.asarray(noisy) - true
    sd = dp.count_stddev(epsilon)
    assert certified == pytest.approx(epsilon)
    assert abs(errors.mean()) < 5 * sd / math.sqrt(n)  # 5 standard errors
    assert errors.std() == pytest.approx(sd, rel=0.08)
    # Laplace: the median absolute error is b·ln 2.
    assert np.median(np.abs(errors)) == pytest.approx(math.log(2) / epsilon, rel=0.15, abs=1)
    assert len(set(noisy)) > 5  # noise was added


def test_sum_noise_scales_with_the_clamp_bound() -> None:
    n, upper, epsilon = 20_000, 100.0, 1.0
    noisy, certified = dp.noisy_sums([5000.0] * n, upper, epsilon)
    errors = np.asarray(noisy) - 5000.0
    assert certified == pytest.approx(epsilon)
    assert errors.std() == pytest.approx(math.sqrt(2) * upper / epsilon, rel=0.08)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    make_staff(world, "officer-a", ["privacy_officer"])
    make_staff(world, "officer-b", ["privacy_officer"], LG_B)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as c:
        yield c


def test_budget_is_tracked_and_enforced(world: World, client: TestClient) -> None:
    import_population(world, 120)
    officer = bearer(client, "officer-a")
    release = f"{BASE}/releases/population"
    unset = client.post(release, json={"epsilon": 0.5}, headers=officer)
    assert unset.status_code == 409 and "プライバシー予算" in unset.json()["errors"][0]["ja"]
    assert client.put(f"{BASE}/budget", json={"epsilon_total": 0}, headers=officer
                      ).status_code == 422
    assert client.put(f"{BASE}/budget", json={"epsilon_total": 1.0}, headers=officer
                      ).json()["epsilon_left"] == 1.0

    first = client.post(release, json={"epsilon": 0.6}, headers=officer)
    assert first.status_code == 201, first.text
    cells = first.json()["cells"]
    assert first.json()["epsilon"] == pytest.approx(0.6)
    assert {"town_code", "sex", "age_band", "count"} <= set(cells[0])
    assert abs(sum(c["count"] for c in cells) - 120) < 120  # noisy, but near the total

    over = client.post(release, json={"epsilon": 0.6}, headers=officer)
    assert over.status_code == 409
    assert "budget" in over.json()["errors"][0]["en"] and over.json()["errors"][0]["field"] == "epsilon"
    assert client.post(release, json={"epsilon": -1}, headers=officer).status_code == 422
    lower = client.put(f"{BASE}/budget", json={"epsilon_total": 0.5}, headers=officer)
    assert lower.status_code == 422  # below what is spent

    # Sums come from the records: the file holder (supervisor) releases them.
    supervisor = bearer(client, "super-a")
    assert client.post(f"{BASE}/releases/age-sum", json={"epsilon": 0.3}, headers=officer
                       ).status_code == 403
    sums = client.post(f"{BASE}/releases/age-sum", json={"epsilon": 0.4, "upper": 100},
                       headers=supervisor)
    assert sums.status_code == 201, sums.text
    [budget] = client.get(f"{BASE}/budgets", headers=officer).json()
    assert budget["epsilon_spent"] == pytest.approx(1.0) and budget["epsilon_left"] == 0
    assert client.post(f"{BASE}/releases/age-sum", json={"epsilon": 0.01},
                       headers=supervisor).status_code == 409
    published = client.get(f"{BASE}/releases").json()
    assert [r["query"]["kind"] for r in published] in (["age_sum", "population"],
                                                       ["population", "age_sum"])
    # Budgets are per municipality.
    other = bearer(client, "officer-b")
    assert client.get(f"/api/v1/municipalities/{LG_B}/privacy/budgets", headers=other).json() == []
    assert client.get(f"{BASE}/budgets", headers=other).status_code == 403

    # The demo seed: a budget and a call where there are none, once.
    privacy = world.svc.privacy
    assert privacy.seed_demo([LG_A, LG_B]) == 1  # LG_A has its budget already
    assert privacy.seed_demo([LG_B]) == 0
    assert privacy.calls(LG_B)[0]["files"] == ["resident_registry"]
