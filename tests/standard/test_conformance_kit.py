"""The conformance kit run against a real Kiban server (uvicorn, both databases): Kiban passes
every mandatory registry requirement; the tax domain is run too (tests/tax asserts its
calculation and settings checks); the reports come out as table, JSON and HTML; the kit runs
with the server's libraries unimportable; and it can fail: against a server that breaks three named
requirements, it reports exactly those three."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kiban.core.clock import SystemClock
from kiban.platform.db import Database
from kiban.standard.kit import report as report_module
from kiban.standard.kit.runner import run
from kiban.web.app import create_app
from kiban.web.context import Services
from kiban_testkit import Backend, serve
from standard.breaker import BROKEN, Breaker


@contextmanager
def kiban_server(backend: Backend, wrap: Callable[[Any], Any] = lambda app: app
                 ) -> Iterator[tuple[str, str, Services]]:
    """Kiban on uvicorn (its app wrapped by `wrap`) with a platform administrator; yields the
    URL, that administrator's token and the services."""
    db = Database(backend.settings)
    app = create_app(backend.settings, SystemClock(), db)
    svc: Services = app.state.services
    svc.accounts.create("operator", "correct-horse-battery", "運用 担当", ["platform_admin"], None,
                        svc.clock.now())
    token = svc.accounts.issue_api_token("operator", svc.clock.now())
    try:
        with serve(wrap(app)) as url:
            yield url, token, svc
    finally:
        db.dispose()


@pytest.fixture
def kiban(backend: Backend) -> Iterator[tuple[str, str, Services]]:
    with kiban_server(backend) as running:
        yield running


def test_kiban_passes_every_mandatory_registry_requirement(kiban: tuple[str, str, Services],
                                                           tmp_path: Path) -> None:
    url, token, svc = kiban
    report = run(url, token, ("registry", "tax"))
    registry = [r for r in report.requirements if r["domain"] == "registry"]
    failing = [(r["id"], r["status"]) for r in registry
               if r["kind"] in ("mandatory", "not_allowed") and r["status"] != "pass"]
    assert failing == [], [o for o in report.outcomes if o.status != "pass"]
    # The tax domain is run too; its calculation and settings checks are asserted to pass in
    # tests/tax/test_calc_conformance.py.
    tax = [r for r in report.requirements if r["domain"] == "tax" and r["tests"]]
    assert tax
    # The throwaway municipalities are retired, their accounts closed.
    assert not [m for m in svc.municipalities.list() if m["lgcode"].startswith("99")]
    retired = [m for m in svc.municipalities.list(include_retired=True)
               if m["lgcode"].startswith("99")]
    assert len(retired) == 2 and {m["status"] for m in retired} == {"retired"}
    assert not [m for m in svc.accounts.list(retired[0]["lgcode"])]

    data = json.loads(report_module.as_json(report))
    assert data["spec_version"] == report.spec_version and len(data["requirements"]) >= 70
    page = report_module.as_html(report)
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in \
        page.split("<body>")[1].replace(url, "")
    assert "JR-0401" in report_module.table(report)


def test_deviations_show_in_the_report(kiban: tuple[str, str, Services]) -> None:
    url, token, svc = kiban
    svc.municipalities.create("131016", "千代田区", "東京都", svc.clock.now())
    admin = svc.accounts.create("chiyoda-admin", "correct-horse-battery", "管理",
                                ["municipality_admin"], "131016", svc.clock.now())
    svc.standard.record_deviation(admin, "131016", {
        "requirement": "JR-0415", "what": "遅延届出に理由を求める", "reason": "簡易裁判所への通知事務のため",
        "decided_by": "千代田区長", "decided_on": "2026-01-05", "review_on": "2027-01-05",
        "value": "require_reason"})
    report = run(url, token, ("registry",), deviations_of="131016")
    entry = next(r for r in report.requirements if r["id"] == "JR-0415")
    assert entry["status"] == "deviated" and entry["checked_status"] == "pass"
    assert entry["deviation"]["reason"] == "簡易裁判所への通知事務のため"
    assert "deviation: 遅延届出に理由を求める" in report_module.table(report)


def test_the_kit_fails_exactly_the_requirements_a_server_breaks(sqlite_backend: Backend) -> None:
    with kiban_server(sqlite_backend, Breaker) as (url, token, _):
        report = run(url, token, ("registry",))
    failing = sorted(r["id"] for r in report.requirements if r["status"] == "fail")
    assert failing == sorted(BROKEN)
    assert not report.mandatory_ok
    assert "DOES NOT CONFORM" in report_module.table(report)


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "sqlalchemy", "starlette", "pydantic", "uvicorn",
                                  "typer", "psycopg", "reportlab", "alembic"}:
            raise ImportError(f"{name} is not installed here")
        return None
sys.meta_path.insert(0, Block())
import runpy
sys.argv = ["kiban.standard.kit", *sys.argv[1:]]
runpy.run_module("kiban.standard.kit", run_name="__main__")
"""


def test_the_kit_runs_without_the_server_libraries(kiban: tuple[str, str, Services],
                                                   tmp_path: Path) -> None:
    url, token, _ = kiban
    assert token.startswith("kbn_")  # never "-…", which a command line takes for an option
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, "--target", url, f"--token={token}", "--domain",
         "registry", "--html", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(
            Path(__file__).resolve().parents[2] / "src")})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "CONFORMS" in done.stdout and out.read_text(encoding="utf-8").startswith("<!doctype")
