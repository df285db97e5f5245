"""The conformance kit's tax calculation and settings checks (kiban/standard/kit/tax_checks.py)
against a real Kiban server on both databases: every check that needs only
POST /tax/calculations and /tax/settings passes."""

from __future__ import annotations

from kiban.standard.kit.runner import run
from kiban_testkit import Backend
from standard.test_conformance_kit import kiban_server

# Checks of the calculation and settings API (the others need stored assessments).
CALCULATION_CHECKS = {f"CT-TAX-{n:03d}" for n in (*range(1, 19), 24, 27, 28)}


def test_the_kit_passes_every_calculation_and_settings_check(backend: Backend) -> None:
    with kiban_server(backend) as (url, token, _svc):
        report = run(url, token, ("tax",))
    outcomes = {o.test: o for o in report.outcomes}
    failing = {t: (outcomes[t].status, outcomes[t].detail) for t in CALCULATION_CHECKS
               if outcomes[t].status != "pass"}
    assert not failing, failing
