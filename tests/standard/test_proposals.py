"""Change proposals: any municipality proposes, others endorse and comment, the maintainers
decide with reasons; accepted proposals form the next version's changelog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer

API = "/api/v1/standard"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    svc = world.svc
    svc.accounts.create("maintainer", PASSWORD, "標準 管理", ["standard_maintainer"], None,
                        svc.clock.now())
    svc.accounts.create("admin-b", PASSWORD, "管理 B", ["municipality_admin"], LG_B,
                        svc.clock.now())
    svc.accounts.create("sato", PASSWORD, "佐藤", ["specialist"], None, svc.clock.now())
    with TestClient(create_app(world.backend.settings, svc.clock, svc.db)) as c:
        yield c


PROPOSAL = {"requirement": "JR-0201", "title": "通称でも検索できるようにする",
            "proposed_text": "氏名、フリガナ又は通称の前方一致で検索できること。",
            "rationale": "外国人住民の窓口対応で通称による照会が多く、現行では探せないため。"}


def test_propose_endorse_comment_and_accept(client: TestClient) -> None:
    a, b = bearer(client, "clerk-a"), bearer(client, "admin-b")
    maintainer = bearer(client, "maintainer")
    made = client.post(f"{API}/proposals", json=PROPOSAL, headers=a)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert made.json()["current_text"]  # the requirement as it stands, beside the proposal
    assert client.post(f"{API}/proposals/{pid}/endorsements",
                       headers=bearer(client, "admin-a")).status_code == 422  # its own
    assert client.post(f"{API}/proposals/{pid}/endorsements",
                       headers=bearer(client, "clerk-b")).status_code == 403  # not an admin
    # Proposals are working papers: a specialist's account does not see them.
    assert client.get(f"{API}/proposals", headers=bearer(client, "sato")).status_code == 403
    assert client.get(f"{API}/proposals/{pid}", headers=bearer(client, "sato")).status_code == 403
    assert client.post(f"{API}/proposals/{pid}/endorsements", headers=b).status_code == 201
    assert client.post(f"{API}/proposals/{pid}/endorsements", headers=b).status_code == 409
    commented = client.post(f"{API}/proposals/{pid}/comments", headers=b,
                            json={"text": "当市でも同じ要望があります。"})
    assert commented.json()["comments"][0]["text"] == "当市でも同じ要望があります。"
    assert client.post(f"{API}/proposals/{pid}/decision", headers=a,
                       json={"accept": True, "reason": "自分で採用"}).status_code == 403
    decided = client.post(f"{API}/proposals/{pid}/decision", headers=maintainer,
                          json={"accept": True, "reason": "複数団体の要望があり、法令上の支障もない"})
    assert decided.status_code == 200
    assert decided.json()["status"] == "accepted" and decided.json()["target_version"] == "1.1.0"
    assert client.post(f"{API}/proposals/{pid}/decision", headers=maintainer,
                       json={"accept": False, "reason": "やはり不採用"}).status_code == 409
    log = client.get(f"{API}/changelog").json()
    assert log["current"] == "1.0.0"
    assert [c["proposal"] for c in log["next"]["changes"]] == [pid]
    assert client.post(f"{API}/proposals/{pid}/endorsements", headers=b).status_code == 409


def test_rejection_needs_a_reason_and_bad_proposals_are_refused(client: TestClient) -> None:
    a, maintainer = bearer(client, "clerk-a"), bearer(client, "maintainer")
    unknown = client.post(f"{API}/proposals", json={**PROPOSAL, "requirement": "JR-9999"},
                          headers=a)
    assert unknown.status_code == 422 and unknown.json()["field"] == "requirement"
    thin = client.post(f"{API}/proposals", json={**PROPOSAL, "rationale": "なんとなく"}, headers=a)
    assert thin.status_code == 422 and thin.json()["field"] == "rationale"
    assert client.post(f"{API}/proposals", json=PROPOSAL,
                       headers=maintainer).status_code == 403  # maintainers decide, not propose
    new = client.post(f"{API}/proposals", json={**PROPOSAL, "requirement": None,
                                                 "title": "新しい要件"}, headers=a).json()
    assert new["requirement"] is None
    no_reason = client.post(f"{API}/proposals/{new['id']}/decision", headers=maintainer,
                            json={"accept": False, "reason": ""})
    assert no_reason.status_code == 422
    rejected = client.post(f"{API}/proposals/{new['id']}/decision", headers=maintainer,
                           json={"accept": False, "reason": "現行の要件で対応できるため"})
    assert rejected.json()["status"] == "rejected"
    assert client.get(f"{API}/changelog").json()["next"]["changes"] == []
    assert [p["id"] for p in client.get(f"{API}/proposals", params={"status": "rejected"},
                                        headers=a).json()] == [new["id"]]


def test_the_console_shows_the_version_and_what_awaits(client: TestClient) -> None:
    client.post(f"{API}/proposals", json=PROPOSAL, headers=bearer(client, "clerk-a"))
    client.post("/login", data={"username": "clerk-a", "password": PASSWORD})
    page = client.get("/console", headers={"Accept": "text/html"})
    assert "標準仕様 1.0.0 で運用中" in page.text and "受付中の変更提案 1 件" in page.text
    public = client.get("/standard", headers={"Accept": "text/html"})
    assert public.status_code == 200 and "1.0.0" in public.text
    assert f"{LG_A}" in client.get("/standard/proposals", headers={"Accept": "text/html"}).text
