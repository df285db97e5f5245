"""Issue 9 part 4: the open dataset 地域・年齢別人口 made with differential privacy. The
generator takes noisy counts from the privacy service, spending ε from the dedicated
`opendata_population` budget; a generation beyond it is refused with the rule named and
publishes nothing; the noise is checked statistically. On SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kiban.core.errors import KibanError
from kiban.opendata.service import OpenData
from kiban.platform.auth import StaffMember
from kiban.privacy import dp
from kiban.privacy.service import RULE_BUDGET
from kiban_testkit import LG_A, PASSWORD, TOWNS, World
from privacy.kit import import_population

DATASET = f"{LG_A}-population-by-area-age"


@pytest.fixture
def officer(world: World) -> StaffMember:
    import_population(world, 150)
    return world.svc.accounts.create("officer-a", PASSWORD, "保護 担当", ["privacy_officer"],
                                     LG_A, world.svc.clock.now())


def test_dp_generation_spends_its_own_budget_and_publishes_no_suppression(
        world: World, officer: StaffMember) -> None:
    od, privacy = OpenData(world.svc.db, world.svc.clock), world.svc.privacy
    with pytest.raises(KibanError) as unset:
        od.generate_population(LG_A, epsilon=0.5)
    assert unset.value.status == 409 and RULE_BUDGET in unset.value.ja
    privacy.set_budget(officer, LG_A, 1.0, "opendata_population")
    privacy.set_budget(officer, LG_A, 5.0)  # the registry's own budget is another one
    for bad in (0.0, -1.0, 11.0):
        with pytest.raises(KibanError) as refused:
            od.generate_population(LG_A, epsilon=bad)
        assert refused.value.status == 422

    done = od.generate_population(LG_A, epsilon=0.6)
    meta, rows = od.records(done.dataset_id)
    assert done.dataset_id == DATASET and done.version == 1
    assert meta["published_by"] == "system:population"
    assert "差分プライバシー" in od.dataset(DATASET)["title"]
    # every 町字 × band (and the margins), nothing suppressed, nothing negative
    assert len(rows) == (len(TOWNS) + 1) * 22
    assert all(r["備考"].startswith("差分プライバシー(ε=0.6") for r in rows)
    assert all(isinstance(r[s], int) and r[s] >= 0 for r in rows for s in ("総数", "男", "女"))
    whole = next(r for r in rows if r["ID"] == f"{LG_A}-total")
    assert abs(whole["総数"] - 150) < 150  # noisy, but near the population

    budgets = {b["dataset"]: b for b in privacy.budgets(officer, LG_A)}
    assert budgets["opendata_population"]["epsilon_spent"] == pytest.approx(0.6)
    assert budgets["registry"]["epsilon_spent"] == 0
    with pytest.raises(KibanError) as over:  # 0.4 left
        od.generate_population(LG_A, epsilon=0.5)
    assert over.value.status == 409 and "予算を超えます" in over.value.ja
    assert od.dataset(DATASET)["current_version"] == 1  # nothing published
    released = [r for r in privacy.releases(LG_A) if r["dataset"] == "opendata_population"]
    assert len(released) == 1 and released[0]["query"] == {"kind": "opendata_population"}
    # without ε the generator suppresses small cells as before, spending nothing
    assert od.generate_population(LG_A).version == 2
    after = {b["dataset"]: b for b in privacy.budgets(officer, LG_A)}
    assert after["opendata_population"]["epsilon_spent"] == pytest.approx(0.6)


def test_dp_counts_are_unbiased_with_the_laplace_spread(world: World, officer: StaffMember
                                                       ) -> None:
    """Many releases: the error of every cell (zeros included) averages near 0 (within five
    standard errors) and spreads as the discrete Laplace of scale 1/ε."""
    privacy = world.svc.privacy
    privacy.set_budget(officer, LG_A, 10.0, "opendata_population")
    epsilon, n = 0.5, 20
    counted = world.svc.registry.population_by_town(LG_A)
    exact: dict[tuple[str, int, str], int] = {}
    for t, b, s, c in counted["counts"]:
        key = (t, b, "1" if s == "1" else "2")
        exact[key] = exact.get(key, 0) + c
    errors = []
    for _ in range(n):
        released = privacy.population_for_open_data(LG_A, epsilon)
        cells = released["counts"]
        assert len(cells) == len(TOWNS) * 21 * 2  # the cells do not depend on the data
        errors += [c - exact.get((t, b, s), 0) for t, b, s, c in cells]
    sd = dp.count_stddev(epsilon)
    assert abs(np.mean(errors)) < 5 * sd / math.sqrt(len(errors))
    assert np.std(errors) == pytest.approx(sd, rel=0.1)
    with pytest.raises(KibanError) as over:
        privacy.population_for_open_data(LG_A, epsilon)  # 10.0 spent
    assert over.value.status == 409


def test_the_scheduled_command_takes_the_dp_option(world: World, officer: StaffMember,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from kiban.cli import app as cli_app

    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_MODE", settings.mode)
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    monkeypatch.setenv("KIBAN_SECRET_KEY", settings.secret_key)
    runner = CliRunner()
    args = ["opendata", "generate-population", "--lgcode", LG_A, "--dp-epsilon", "0.5"]
    refused = runner.invoke(cli_app, args)
    assert refused.exit_code != 0 and "budget" in refused.output
    world.svc.privacy.set_budget(officer, LG_A, 0.5, "opendata_population")
    done = runner.invoke(cli_app, args)
    assert done.exit_code == 0, done.output
    assert f"{DATASET}: version 1" in done.output
    _, rows = OpenData(world.svc.db, world.svc.clock).records(DATASET)
    assert rows[0]["備考"].startswith("差分プライバシー")
