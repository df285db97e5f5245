"""行政機関等匿名加工情報 end to end over HTTP: a call, proposals refused with the rule named,
screening, processing (checked by pycanon), contract, delivery; the ledger records each step."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pycanon import anonymity

from kiban.platform import ledger
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, World, bearer
from privacy.kit import import_population, make_staff

BASE = f"/api/v1/municipalities/{LG_A}/privacy"
CALL = {"title": "令和8年度 匿名加工情報の提案募集", "opens_on": "2026-03-20",
        "closes_on": "2026-04-30", "files": ["resident_registry"]}


def proposal(call_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "call_id": call_id, "file_id": "resident_registry",
        "proposer": {"organisation": "株式会社まちづくり研究所", "contact_email": "data@example.jp"},
        "purpose": "地域の世帯構成と年齢構成から子育て支援施設の需要を推計し、出店計画に用いる",
        "items": ["age", "sex", "town_code", "relationship"], "sensitive": "relationship",
        "k": 5, "l": 2, "use_from": "2026-05-01", "use_to": "2027-03-31"}
    body.update(overrides)
    return body


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    make_staff(world, "officer-a", ["privacy_officer"], department="総務課")
    make_staff(world, "officer-b", ["privacy_officer"], LG_B, department="総務課")
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as c:
        yield c


def refused_rules(response: Any) -> str:
    assert response.status_code == 422, response.text
    return " ".join(e["en"] for e in response.json()["errors"])


def test_call_proposal_screening_processing_contract_delivery(world: World,
                                                              client: TestClient) -> None:
    import_population(world, 1100)
    officer = bearer(client, "officer-a")
    short = client.post(f"{BASE}/calls", json={**CALL, "closes_on": "2026-04-10"},
                        headers=officer)
    assert "施行規則(提案の募集期間)" in refused_rules(short)
    wrong_file = client.post(f"{BASE}/calls", json={**CALL, "files": ["support_measures"]},
                             headers=officer)
    assert "第110条" in refused_rules(wrong_file)
    call = client.post(f"{BASE}/calls", json=CALL, headers=officer)
    assert call.status_code == 201, call.text
    call_id = call.json()["id"]
    assert client.get(f"{BASE}/calls").json()[0]["id"] == call_id  # public

    bad = {
        "names": (proposal(call_id, items=["age", "family_name"]), "第62条第1号"),
        "codes": (proposal(call_id, items=["age", "juminhyo_code"]), "第62条第3号"),
        "k": (proposal(call_id, k=2), "k≥5"),
        "l": (proposal(call_id, l=1), "l≥2"),
        "proposer": (proposal(call_id, proposer={
            "organisation": "X", "contact_email": "x@example.jp",
            "disqualifications": ["contract_cancelled_2y"]}), "第113条"),
        "file": (proposal(call_id, file_id="certificates"), "第110条"),
        "item": (proposal(call_id, items=["age", "blood_type"]), "提供できる項目"),
    }
    for name, (body, rule) in bad.items():
        assert rule in refused_rules(client.post(f"{BASE}/proposals", json=body)), name
    assert client.get(f"{BASE}/proposals", headers=officer).json() == []  # nothing stored

    submitted = client.post(f"{BASE}/proposals", json=proposal(call_id))
    assert submitted.status_code == 201, submitted.text
    pid = submitted.json()["id"]
    early = client.get(f"{BASE}/proposals/{pid}/dataset", headers=officer)
    assert early.status_code == 409

    screened = client.post(f"{BASE}/proposals/{pid}/screening", headers=officer).json()
    assert screened["status"] == "approved" and screened["screening"]["persons"] >= 1000

    # The officer cannot make the data: the file's holder (registry supervisor) does.
    assert client.post(f"{BASE}/proposals/{pid}/processing", headers=officer).status_code == 403
    processed = client.post(f"{BASE}/proposals/{pid}/processing",
                            headers=bearer(client, "super-a"))
    assert processed.status_code == 200, processed.text
    record = processed.json()["processing"]
    assert record["k"] == 5 and record["l"] == 2 and record["risk"]["k"] >= 5
    assert record["risk"]["prosecutor"]["highest"] <= 1 / 5
    assert {"prosecutor", "journalist", "marketer"} <= set(record["risk"])
    assert record["loss"]["suppressed_share"] <= 0.05
    assert "個人番号" in record["removed"]

    contract = client.post(f"{BASE}/proposals/{pid}/contract", headers=officer, json={
        "contract_no": "R8-匿-001", "signed_on": "2026-04-01", "fee_yen": 21000})
    assert contract.json()["status"] == "contracted"
    delivered = client.get(f"{BASE}/proposals/{pid}/dataset", headers=officer)
    assert delivered.status_code == 200
    rows = list(csv.reader(io.StringIO(delivered.text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header == ["年齢", "性別", "町字", "続柄"] and len(body) == record["records"]
    frame = pd.DataFrame(body, columns=header)
    assert anonymity.k_anonymity(frame, ["年齢", "性別", "町字"]) >= 5
    assert anonymity.l_diversity(frame, ["年齢", "性別", "町字"], ["続柄"]) >= 2
    assert not any("山" in c or (c.isdigit() and len(c) == 11) for row in body for c in row)

    with world.svc.db.tenant(LG_A) as conn:
        kinds = [e["kind"] for e in ledger.entries(conn, LG_A, subject=pid)]
    assert kinds == ["privacy.proposal_submitted", "privacy.proposal_screened",
                     "privacy.anonymised", "privacy.contracted", "privacy.delivered"]

    # A municipality with fewer than 1,000 persons: screening refuses, naming the rule.
    officer = bearer(client, "officer-b")
    base = f"/api/v1/municipalities/{LG_B}/privacy"
    call_id = client.post(f"{base}/calls", json=CALL, headers=officer).json()["id"]
    pid = client.post(f"{base}/proposals", json=proposal(call_id)).json()["id"]
    screened = client.post(f"{base}/proposals/{pid}/screening", headers=officer).json()
    assert screened["status"] == "refused"
    assert "1000人以上" in screened["refusals"][0]["rule"]
    # Another municipality's officer sees none of it.
    other = bearer(client, "officer-a")
    assert client.get(f"{base}/proposals", headers=other).status_code == 403
    assert pid not in [p["id"] for p in client.get(f"{BASE}/proposals", headers=other).json()]
