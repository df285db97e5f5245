"""Runs the checks against a target: sets up two throwaway municipalities through the
standard API, runs every check of the chosen domains, retires the municipalities, and maps
the outcomes onto the spec's requirements."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from kiban.standard import spec as spec_module
from kiban.standard.kit import core
from kiban.standard.kit.core import CHECKS, Context, Failed, NotImplementedHere, Tenant

# Worst first: a requirement takes the worst outcome of its checks.
ORDER = ("fail", "not_implemented", "pass")
ROLES = {"clerk": "counter_clerk", "supervisor": "registry_supervisor",
         "admin": "municipality_admin", "tax": "tax_officer"}
TOWNS = [{"code": "0001001", "name": "適合町一丁目", "name_kana": "テキゴウチョウイッチョウメ"},
         {"code": "0001002", "name": "適合町二丁目", "name_kana": "テキゴウチョウニチョウメ"},
         {"code": "0002001", "name": "検査台一丁目", "name_kana": "ケンサダイイッチョウメ"}]


class SetupFailed(RuntimeError):
    pass


@dataclass
class Outcome:
    test: str
    title: str
    status: str  # pass | fail | not_implemented
    detail: str
    ms: float


@dataclass
class Report:
    target: str
    spec_version: str
    started: str
    seconds: float
    domains: list[str]
    requirements: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self, kind: str | None = None) -> dict[str, int]:
        found: dict[str, int] = {}
        for r in self.requirements:
            if kind is None or r["kind"] == kind:
                found[r["status"]] = found.get(r["status"], 0) + 1
        return found

    @property
    def mandatory_ok(self) -> bool:
        """Every mandatory and not-allowed requirement passes (or is deviated, publicly)."""
        return all(r["status"] in ("pass", "deviated") for r in self.requirements
                   if r["kind"] in ("mandatory", "not_allowed"))

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "spec_version": self.spec_version,
                "started": self.started, "seconds": round(self.seconds, 2),
                "domains": self.domains, "summary": self.counts(),
                "mandatory_summary": self.counts("mandatory"),
                "mandatory_ok": self.mandatory_ok, "requirements": self.requirements,
                "tests": [o.__dict__ for o in self.outcomes]}


def _lgcode(rng: secrets.SystemRandom) -> str:
    """A valid 地方公共団体コード under prefix 99, which no real municipality has."""
    body = f"99{rng.randrange(1000):03d}"
    digit = (11 - sum(int(d) * w for d, w in zip(body, (6, 5, 4, 3, 2), strict=True)) % 11) % 10
    return body + str(digit)


def _setup_tenant(client: httpx.Client, admin: dict[str, str], name: str,
                  rng: secrets.SystemRandom) -> Tenant:
    for _ in range(20):
        code = _lgcode(rng)
        made = client.post("/api/v1/municipalities", headers=admin, json={
            "lgcode": code, "name": name, "prefecture": "検査県", "conformance": True})
        if made.status_code == 201:
            break
        if made.status_code != 409:
            raise SetupFailed(f"creating a test municipality: {made.status_code} {made.text[:300]}")
    else:
        raise SetupFailed("no free test 地方公共団体コード under prefix 99")
    tenant = Tenant(code, name, TOWNS)
    towns = client.put(f"/api/v1/municipalities/{code}/towns", headers=admin, json=TOWNS)
    if towns.status_code != 200:
        raise SetupFailed(f"setting the 町字 master: {towns.status_code} {towns.text[:300]}")
    for role, standard_role in ROLES.items():
        username = f"ct-{code}-{role}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(18)
        made = client.post(f"/api/v1/municipalities/{code}/staff", headers=admin, json={
            "username": username, "password": password, "display_name": f"適合性 {role}",
            "roles": [standard_role]})
        if made.status_code != 201:
            raise SetupFailed(f"creating staff: {made.status_code} {made.text[:300]}")
        token = client.post("/api/v1/tokens", json={"username": username, "password": password})
        if token.status_code != 201:
            raise SetupFailed(f"signing in: {token.status_code} {token.text[:300]}")
        tenant.tokens[role] = token.json()["token"]
    return tenant


def _retire(client: httpx.Client, admin: dict[str, str], tenant: Tenant) -> None:
    client.post(f"/api/v1/municipalities/{tenant.lgcode}/retire", headers=admin)


def _deviations(client: httpx.Client, lgcode: str) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/standard/deviations", params={"lgcode": lgcode})
    if response.status_code != 200:
        return {}
    return {d["requirement"]: d for d in response.json() if d.get("status", "active") == "active"}


def run(target: str, token: str, domains: Iterable[str] = ("registry", "tax"),
        deviations_of: str | None = None, only: Iterable[str] | None = None,
        transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> Report:
    """Runs the kit. `token` is a platform administrator's (it creates the test
    municipalities); `deviations_of` names a municipality whose recorded deviations are shown
    on the requirements they concern."""
    core.implemented()  # registers every check
    spec = spec_module.current()
    domains = list(domains)
    wanted = set(only or [])
    started = time.perf_counter()
    report = Report(target, spec.version, datetime.now(UTC).isoformat(timespec="seconds"), 0.0,
                    domains)
    rng = secrets.SystemRandom()
    with httpx.Client(base_url=target.rstrip("/"), timeout=timeout, transport=transport) as client:
        admin = {"Authorization": f"Bearer {token}"}
        home = _setup_tenant(client, admin, "適合性検査市", rng)
        other = _setup_tenant(client, admin, "適合性検査町", rng)
        try:
            ctx = Context(client, home, other)
            for c in sorted(CHECKS.values(), key=lambda c: c.id):
                if c.domain not in domains or (wanted and c.id not in wanted):
                    continue
                t0 = time.perf_counter()
                try:
                    c.run(ctx)
                    status, detail = "pass", ""
                except Failed as exc:
                    status, detail = "fail", str(exc)
                except NotImplementedHere as exc:
                    status, detail = "not_implemented", str(exc)
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    status, detail = "fail", f"{type(exc).__name__}: {exc}"
                report.outcomes.append(Outcome(c.id, c.title, status, detail,
                                               (time.perf_counter() - t0) * 1000))
            deviations = _deviations(client, deviations_of) if deviations_of else {}
        finally:
            _retire(client, admin, home)
            _retire(client, admin, other)
    by_requirement: dict[str, list[Outcome]] = {}
    for o in report.outcomes:
        for rid in CHECKS[o.test].requirements:
            by_requirement.setdefault(rid, []).append(o)
    for r in sorted(spec.requirements.values(), key=lambda r: r.id):
        if r.domain not in domains:
            continue
        outcomes = by_requirement.get(r.id, [])
        if outcomes:
            status = min((o.status for o in outcomes), key=ORDER.index)
        else:
            status = "untested"
        entry: dict[str, Any] = {
            "id": r.id, "title": r.title, "kind": r.kind, "domain": r.domain,
            "section": r.section, "status": status, "tests": [o.test for o in outcomes]}
        if r.id in deviations:
            d = deviations[r.id]
            entry["checked_status"] = status
            entry["status"] = "deviated"
            entry["deviation"] = {k: d.get(k) for k in ("what", "reason", "decided_by",
                                                        "decided_on", "review_on", "setting",
                                                        "value")}
        report.requirements.append(entry)
    report.seconds = time.perf_counter() - started
    return report
