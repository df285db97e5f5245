"""Helpers of the procedures tests: a resident with a linked virtual card, the hub with the
procedures' permission rules, a portal session cookie for the resident, staff tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from kiban.identity import jose, linking, service, testca
from kiban.linkage.model import municipality_member
from kiban.platform.auth import StaffMember
from kiban.procedures.catalog import load_catalog
from kiban.procedures.service import canonical_payload, portal_subject, procedures_member
from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World, bearer, move_in_data

ADDRESS = "東京都千代田区本町一丁目1番地2 メゾン101"
_KEYS: list[Any] = []

VALID_FORMS: dict[str, dict[str, Any]] = {
    "juminhyo-request": {"purpose": "就職のため", "scope": "self", "copies": 1},
    "tax-certificate-request": {"fiscal_year": 2025, "purpose": "奨学金の申請", "copies": 1},
    "tenshutsu": {"move_date": "2026-04-20", "new_lgcode": "141003", "new_address": "横浜市中区1-1",
                  "members": "全員"},
    "jido-teate": {"bank_account_holder": "ヤマダ タロウ", "bank_code": "0001", "account_number": "1234567"},
    "kokuho-enrolment": {"reason": "move_in", "start_date": "2026-03-25"},
    "school-transfer": {"child_name": "山田 一郎", "grade": 3, "previous_school": "梅田小学校"},
    "inquiry": {"subject": "ごみの出し方", "message": "粗大ごみの申込方法を教えてください。"},
}


def reuse_keys(monkeypatch: pytest.MonkeyPatch, size: int = 6) -> None:
    """RSA keys from a pool made once per process (key generation dominates set-up)."""
    if not _KEYS:
        _KEYS.extend(testca.new_key() for _ in range(size))
    turn = iter(range(10**6))
    monkeypatch.setattr(testca, "new_key", lambda bits=2048: _KEYS[next(turn) % len(_KEYS)])


def portal_cookie(secret_key: str, claims: dict[str, Any], ttl: int = 1800) -> str:
    """The portal's sealed session cookie (kiban.identity.portal.seal), as after a card login."""
    key = hashlib.sha256(b"kiban-portal-cookie:" + secret_key.encode()).digest()
    payload = jose.b64url(json.dumps({**claims, "exp": int(time.time()) + ttl}, ensure_ascii=False).encode())
    return f"{payload}.{jose.b64url(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


def permission_rules(lgcode: str = LG_A, skip: tuple[tuple[str, str], ...] = ()) -> list[dict[str, str]]:
    rules = []
    for proc in load_catalog().values():
        for ev in proc.evidence:
            if (proc.id, ev.item) in skip:
                continue
            rules.append({"requester": procedures_member(lgcode), "provider": "JP/LG/*/jumin", "item": ev.item,
                          "procedure": proc.id, "legal_basis": ev.legal_basis})
    return rules


def income_provider(lgcode: str, resident_id: str | None, item: str, params: dict[str, Any]
                    ) -> tuple[str, dict[str, Any]]:
    """A stand-in for the tax domain's income provider (docs/linkage.md, provider hook)."""
    if resident_id is None:
        return "not-found", {}
    return "ok", {"fiscal_year": 2025, "total_income": 3_560_000}


@dataclass
class Env:
    world: World
    client: TestClient
    pki: service.TestPki
    cards: dict[str, testca.Card]
    residents: dict[str, str]  # "taro", "hanako" -> resident id
    staff: dict[str, dict[str, str]] = field(default_factory=dict)
    tax: StaffMember | None = None

    @property
    def secret(self) -> str:
        return self.world.backend.settings.secret_key

    def login(self, who: str = "taro", lgcode: str = LG_A) -> None:
        rid = self.residents[who]
        name = {"taro": "山田 太郎", "hanako": "山田 花子"}[who]
        born = {"taro": "1980-05-05", "hanako": "1982-07-07"}[who]
        claims = {"sub": portal_subject(self.secret, lgcode, rid), "name": name,
                  "address": {"formatted": ADDRESS, "country": "JP"}, "birthdate": born}
        self.client.cookies.set("kiban_portal", portal_cookie(self.secret, claims), path="/portal")

    def sign(self, payload: bytes, who: str = "taro") -> str:
        card = self.cards[who]
        return base64.b64encode(testca.sign_detached(payload, card.signing_cert, card.signing_key)).decode()

    def submit(self, procedure_id: str, form: dict[str, Any] | None = None, *, who: str = "taro",
               signer: str | None = None, payload: bytes | None = None, signature: str | None = None,
               headers: dict[str, str] | None = None, **extra: Any) -> Any:
        form = VALID_FORMS[procedure_id] if form is None else form
        payload = payload or canonical_payload(LG_A, procedure_id, form)
        signature = signature if signature is not None else self.sign(payload, signer or who)
        return self.client.post("/portal/api/procedures/applications", headers=headers or {},
                                json={"payload": base64.b64encode(payload).decode(), "signature": signature,
                                      **extra})

    def staff_post(self, app_id: str, action: str, as_: str = "clerk-a", **body: Any) -> Any:
        return self.client.post(f"/api/v1/municipalities/{LG_A}/procedures/applications/{app_id}/{action}",
                                headers=self.staff[as_], json=body)

    def staff_get(self, app_id: str, as_: str = "clerk-a") -> Any:
        return self.client.get(f"/api/v1/municipalities/{LG_A}/procedures/applications/{app_id}",
                               headers=self.staff[as_])


def build_env(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              rules: list[dict[str, str]] | None = None) -> Iterator[Env]:
    reuse_keys(monkeypatch)
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.delenv("KIBAN_SMTP_URL", raising=False)
    svc = world.svc
    pki = service.TestPki(tmp_path / "ca", "test", svc.clock)
    pki.init()
    ids = svc.registry.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"]
    residents = {"taro": ids[0], "hanako": ids[1]}
    links = linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, "test")
    cards = {}
    for who, name, born, sex in (("taro", "山田 太郎", "1980-05-05", "1"), ("hanako", "山田 花子", "1982-07-07", "2")):
        card = pki.issue_card(LG_A, who, name, ADDRESS, born, sex, "1234")
        auth = card.auth_cert.public_bytes(Encoding.DER)
        assert links.link_card(LG_A, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key)).linked
        cards[who] = card
    hub = svc.linkage
    hub.local_providers["zeimu/income-certificate"] = income_provider
    hub.local_descriptions["zeimu/income-certificate"] = "所得証明"
    hub.register_municipality(LG_A, "千代田区")
    hub.publish_permissions(world.platform, permission_rules() if rules is None else rules, note="procedures")
    assert municipality_member(LG_A) in {m["id"] for m in hub.members()}
    tax = svc.accounts.create("tax-a", PASSWORD, "税務 一子", ["tax_officer"], LG_A, svc.clock.now())
    app = create_app(world.backend.settings, svc.clock, svc.db)
    app.state.services.linkage.local_providers["zeimu/income-certificate"] = income_provider
    with TestClient(app, follow_redirects=False) as client:
        env = Env(world, client, pki, cards, residents, tax=tax)
        env.staff = {u: bearer(client, u) for u in ("clerk-a", "clerk-b", "tax-a", "super-a")}
        env.staff["tax-a"]["X-Kiban-Purpose"] = "tax_assessment"  # the tax officer's purpose of use
        yield env
