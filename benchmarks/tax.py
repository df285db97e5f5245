"""Benchmark of the resident-tax engine (pure computation, issue 4): taxpayers per second on
one core for a synthetic population, beside two baselines measured in the same run:

1. the same engine taking the same people one taxpayer at a time (a population of one each:
   what a per-row implementation on the same rules costs), and
2. OpenFisca-Japan (`openfisca-japan` from PyPI) computing its 住民税 for the same people's
   salary and birth date, in its own virtual environment (var/bench-openfisca, created here
   when missing), since its pinned NumPy differs from ours.

Targets: ≥ 5,000,000 taxpayers/s; ≥ 10× OpenFisca-Japan. Medians of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kiban.tax import engine
from kiban.tax.model import MunicipalOptions

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "var" / "bench-openfisca"
FISCAL_YEAR = 2025


def synthetic(n: int, seed: int = 1) -> engine.Population:
    """A municipality-like population: salaries log-normal, a third with pensions, spouses,
    about 0.6 relatives per taxpayer, some insurance, donations and housing loans."""
    rng = np.random.default_rng(seed)
    birth_year = rng.integers(1930, 2006, n)
    birth = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + rng.integers(
        0, 365, n).astype("timedelta64[D]")
    old = birth_year < 1960
    salary = np.where(old & (rng.random(n) < 0.7), 0,
                      np.exp(rng.normal(15.1, 0.6, n)).astype(np.int64))
    pension = np.where(old, rng.integers(600_000, 3_500_000, n), 0)
    m = int(n * 0.6)
    relatives = engine.Relatives.from_columns(
        owner=np.sort(rng.integers(0, n, m)),
        birth_date=(rng.integers(1935, 2024, m) - 1970).astype("datetime64[Y]").astype(
            "datetime64[D]"),
        aggregate_income=np.where(rng.random(m) < 0.85, 0, rng.integers(0, 1_500_000, m)),
        disability=(rng.random(m) < 0.03).astype(np.int8) * 2,
        cohabiting=rng.random(m) < 0.9, lineal_ascendant=rng.random(m) < 0.2)
    has_spouse = rng.random(n) < 0.5
    return engine.Population.from_columns(
        n, relatives=relatives, birth_date=birth, female=rng.random(n) < 0.5,
        disability=(rng.random(n) < 0.04).astype(np.int8),
        single_parent=rng.random(n) < 0.02, widow=rng.random(n) < 0.03,
        salary_revenue=salary, pension_revenue=pension,
        business_income=np.where(rng.random(n) < 0.08, rng.integers(0, 6_000_000, n), 0),
        dividend_income=np.where(rng.random(n) < 0.05, rng.integers(0, 1_000_000, n), 0),
        social_insurance=(salary * 0.15).astype(np.int64) + pension // 10,
        life_general_new=np.where(rng.random(n) < 0.4, rng.integers(0, 120_000, n), 0),
        life_care_medical=np.where(rng.random(n) < 0.3, rng.integers(0, 80_000, n), 0),
        earthquake_insurance=np.where(rng.random(n) < 0.3, rng.integers(0, 60_000, n), 0),
        medical_paid=np.where(rng.random(n) < 0.1, rng.integers(0, 500_000, n), 0),
        has_spouse=has_spouse, spouse_birth_date=birth + 700,
        spouse_income=np.where(rng.random(n) < 0.6, 0, rng.integers(0, 3_000_000, n)),
        donation_hometown=np.where(rng.random(n) < 0.15, rng.integers(5_000, 200_000, n), 0),
        housing_unused_credit=np.where(rng.random(n) < 0.1, rng.integers(0, 200_000, n), 0),
        housing_income_tax_taxable=(salary * 0.5).astype(np.int64))


def take(pop: engine.Population, i: int) -> engine.Population:
    """Row i alone, as the single-taxpayer path receives it."""
    columns = {f: getattr(pop, f)[i:i + 1] for f in pop.__dataclass_fields__
               if f != "relatives"}
    r = pop.relatives
    mask = r.owner == i
    relatives = engine.Relatives(np.zeros(int(mask.sum()), dtype=np.int64), r.birth_date[mask],
                                 r.aggregate_income[mask], r.disability[mask], r.cohabiting[mask],
                                 r.lineal_ascendant[mask])
    return engine.Population(**columns, relatives=relatives)


def median_seconds(fn, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall and CPU seconds (CPU time: what one core spends, whatever else runs on a
    shared machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


OPENFISCA_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np
from openfisca_core.simulation_builder import SimulationBuilder
from openfisca_japan import CountryTaxBenefitSystem
data = json.load(open(sys.argv[1]))
runs = int(sys.argv[2])
salary = np.array(data["salary"], dtype=float)
birth = np.array(data["birth"], dtype="datetime64[D]")
n = len(salary)
tbs = CountryTaxBenefitSystem()
period = "2025-01-01"
times, cpu, result = [], [], None
for _ in range(runs):
    started, started_cpu = time.perf_counter(), time.process_time()
    sim = SimulationBuilder().build_default_simulation(tbs, n)
    sim.set_input("収入", period, salary)
    sim.set_input("誕生年月日", "ETERNITY", birth)
    result = sim.calculate("住民税", period)
    times.append(time.perf_counter() - started)
    cpu.append(time.process_time() - started_cpu)
print(json.dumps({"seconds": statistics.median(times), "cpu": statistics.median(cpu), "n": n,
                  "sample": [float(x) for x in result[:5]]}))
"""


def openfisca(pop: engine.Population, n: int, runs: int) -> dict[str, object]:
    """Runs OpenFisca-Japan's 住民税 in its own environment; {'error': why} when it cannot."""
    python = VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True,
                              text=True)
        if made.returncode != 0:
            return {"error": f"venv: {made.stderr.strip()[-300:]}"}
        pip = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "openfisca-japan"],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            return {"error": f"pip install openfisca-japan: {pip.stderr.strip()[-500:]}"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "population.json"
        data.write_text(json.dumps({"salary": pop.salary_revenue[:n].tolist(),
                                    "birth": [str(d) for d in pop.birth_date[:n]]}))
        script = Path(tmp) / "run.py"
        script.write_text(OPENFISCA_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([str(python), str(script), str(data), str(runs)],
                              capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": f"OpenFisca-Japan failed: {done.stderr.strip()[-500:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taxpayers", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2_000, help="taxpayers one at a time")
    parser.add_argument("--openfisca", type=int, default=100_000,
                        help="taxpayers for OpenFisca-Japan (0 to skip)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    options = MunicipalOptions()
    pop = synthetic(args.taxpayers)
    engine.compute(synthetic(10), FISCAL_YEAR, options)  # parameters loaded, caches warm

    seconds, cpu = median_seconds(lambda: engine.compute(pop, FISCAL_YEAR, options), args.runs)
    rate, cpu_rate = args.taxpayers / seconds, args.taxpayers / cpu
    singles = [take(pop, i) for i in range(args.single)]
    single_seconds, single_cpu = median_seconds(
        lambda: [engine.compute(p, FISCAL_YEAR, options) for p in singles], max(1, args.runs // 2))
    single_rate, single_cpu_rate = args.single / single_seconds, args.single / single_cpu
    # The same people give the same totals either way.
    whole = engine.compute(pop, FISCAL_YEAR, options).total[:args.single]
    alone = np.array([engine.compute(p, FISCAL_YEAR, options).total[0] for p in singles[:200]])
    assert (whole[:200] == alone).all()

    print(f"population: {args.taxpayers:,} taxpayers, {len(pop.relatives.owner):,} relatives, "
          f"令和{FISCAL_YEAR - 2018}年度, medians of {args.runs} runs, one core")
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<46}{'wall /s':>12}{'CPU /s':>12}{'Kiban is':>10}")
    print(f"{'Kiban, whole population (vectorised)':<46}{rate:>12,.0f}{cpu_rate:>12,.0f}"
          f"{'':>10}")
    print(f"{'Kiban, one taxpayer at a time (same engine)':<46}{single_rate:>12,.0f}"
          f"{single_cpu_rate:>12,.0f}{cpu_rate / single_cpu_rate:>9,.0f}×")
    if args.openfisca:
        found = openfisca(pop, args.openfisca, max(1, args.runs // 2))
        if "error" in found:
            print(f"OpenFisca-Japan: not measured: {found['error']}")
        else:
            of_rate = float(found["n"]) / float(found["seconds"])  # type: ignore[arg-type]
            of_cpu = float(found["n"]) / float(found["cpu"])  # type: ignore[arg-type]
            print(f"{'OpenFisca-Japan 住民税 (' + format(found['n'], ',') + ' people)':<46}"
                  f"{of_rate:>12,.0f}{of_cpu:>12,.0f}{cpu_rate / of_cpu:>9,.1f}×")
            print("  (OpenFisca-Japan's 住民税 takes salary, age and its deductions only: no "
                  "税額控除, no 非課税 by 級地, float arithmetic)")
    print(f"target ≥ 5,000,000/s (CPU): {'met' if cpu_rate >= 5_000_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
