"""The exchange over HTTP (FastAPI TestClient) and in-process: allowed exchanges, every refusal
of the issue's bad-input list (each with its code, logged, never reaching the provider), code
separation between members, the permission table, and the resident's view."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from linkage_kit import BASIS, INSURER, ITEM, JUMIN_A, JUMIN_B, PENSION, PROCEDURE, Setup, build, new_agency

from kiban.core.errors import ValidationFailed
from kiban.identity import testca
from kiban.linkage import merkle, protocol
from kiban.linkage.client import HttpClient, InProcessClient
from kiban.linkage.service import Hub
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, World, bearer


@pytest.fixture
def setup(world: World) -> Setup:
    return build(world)


def app_client(world: World) -> TestClient:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    app.state.services = world.svc
    return TestClient(app)


@pytest.fixture
def client(world: World) -> TestClient:
    return app_client(world)


@pytest.fixture
def lite(sqlite_world: World) -> tuple[World, Setup, TestClient]:
    """Tests whose storage paths are covered on both databases elsewhere run on SQLite only."""
    return sqlite_world, build(sqlite_world), app_client(sqlite_world)


def http_client(client: TestClient, agency_id: str, key: ed25519.Ed25519PrivateKey, hub: Hub) -> HttpClient:
    return HttpClient("http://testserver", agency_id, key, hub.hub_certificate, clock=hub.clock, http=client)


def tree_size(hub: Hub) -> int:
    return int(hub.sth()["tree_size"])


def send(client: TestClient, setup: Setup, body: bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    response = client.post("/api/v1/linkage/exchange", content=body, headers=headers)
    answer = protocol.open_response(response.content, dict(response.headers),
                                    protocol.certificate_key(setup.hub.hub_certificate), body)
    return response.status_code, answer, dict(response.headers)


def signed(setup: Setup, **overrides: object) -> protocol.Outgoing:
    values: dict = {"client": INSURER, "key": setup.insurer.key, "provider": JUMIN_A, "item": ITEM,
                    "procedure": PROCEDURE, "subject": setup.insurer_code, "now": setup.hub.clock.now()}
    values.update(overrides)
    return protocol.build_request(**values)


def test_allowed_exchange_over_http_returns_signed_household_data(world: World, setup: Setup,
                                                                   client: TestClient) -> None:
    insurer = http_client(client, INSURER, setup.insurer.key, setup.hub)
    result = insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code)
    assert result.ok and result.status == 200
    assert [m["relationship"] for m in result.data["members"]] == ["世帯主", "妻"]
    assert result.data["members"][0]["name"] == "山田 太郎"
    assert result.response["legal_basis"] == BASIS
    assert setup.calls == [(LG_A, setup.resident_id, ITEM)]
    # Neither the 住民票コード, the 個人番号 nor any member's code reaches the requester.
    raw = json.dumps(result.response, ensure_ascii=False)
    head = world.svc.registry.get(world.supervisor_a, LG_A, setup.resident_id)
    assert head["juminhyo_code"] not in raw
    assert "my_number" not in raw
    provider_code = setup.hub.enrol(JUMIN_A, LG_A, setup.resident_id)
    assert provider_code not in raw
    assert result.leaf_index == tree_size(setup.hub) - 1


def test_in_process_and_http_clients_are_interchangeable(lite: tuple[World, Setup, TestClient]) -> None:
    _, setup, client = lite
    """A municipality asks another through the in-process client; an agency over HTTP; both
    get the same verified answer shape."""
    setup.hub.publish_permissions(
        client.app.state.services.accounts.create(  # type: ignore[attr-defined]
            "platform2", "correct-horse-battery", "基盤", ["platform_admin"], None, setup.hub.clock.now()),
        [{"requester": JUMIN_B, "provider": JUMIN_A, "item": ITEM, "procedure": PROCEDURE, "legal_basis": BASIS},
         {"requester": INSURER, "provider": JUMIN_A, "item": ITEM, "procedure": PROCEDURE, "legal_basis": BASIS}])
    code_b = setup.hub.enrol(JUMIN_B, LG_A, setup.resident_id)
    local = InProcessClient(setup.hub, JUMIN_B)
    remote = http_client(client, INSURER, setup.insurer.key, setup.hub)
    a = local.exchange(JUMIN_A, ITEM, PROCEDURE, code_b)
    b = remote.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code)
    assert a.ok and b.ok and a.data == b.data


def refusal(status: int, answer: dict, headers: dict, code: str) -> None:
    assert answer["status"] == "refused"
    assert answer["error"]["code"] == code
    assert headers["x-kiban-error"] == code
    assert status == {"unsigned": 401, "bad-signature": 401, "unknown-member": 403, "malformed": 400,
                      "oversized": 413, "expired": 400, "replayed": 409, "unknown-provider": 404,
                      "unknown-item": 404, "not-permitted": 403, "unknown-code": 403}[code]


def test_every_bad_message_is_refused_logged_and_never_reaches_the_provider(
        world: World, setup: Setup, client: TestClient) -> None:
    hub = setup.hub
    stranger = new_agency(hub, "JP/GOV/unknown/x", "未登録")
    good = signed(setup)
    cases: list[tuple[str, bytes, dict[str, str]]] = []
    cases.append(("unsigned", good.body, {protocol.CLIENT_HEADER: INSURER}))
    other_key = ed25519.Ed25519PrivateKey.generate()
    cases.append(("bad-signature", good.body, {protocol.CLIENT_HEADER: INSURER,
                                               protocol.SIGNATURE_HEADER: protocol.sign(other_key, good.body)}))
    tampered = good.body.replace(PROCEDURE.encode(), b"kenpo-other")
    cases.append(("bad-signature", tampered, {**good.headers}))
    cases.append(("bad-signature", good.body, {**good.headers, protocol.SIGNATURE_HEADER: "not base64!"}))
    unknown = signed(setup, client="JP/GOV/unknown/x", key=stranger.key)
    cases.append(("unknown-member", unknown.body, unknown.headers))
    garbage = b'{"protocol": "kiban-linkage/1", "request_id": 7}'
    cases.append(("malformed", garbage, {protocol.CLIENT_HEADER: INSURER,
                                         protocol.SIGNATURE_HEADER: protocol.sign(setup.insurer.key, garbage)}))
    not_json = b"\xff\xfe not json"
    cases.append(("malformed", not_json, {protocol.CLIENT_HEADER: INSURER,
                                          protocol.SIGNATURE_HEADER: protocol.sign(setup.insurer.key, not_json)}))
    # Signed by the insurer but naming the pension service as client.
    posing = signed(setup, client=PENSION)
    cases.append(("malformed", posing.body, {**posing.headers, protocol.CLIENT_HEADER: INSURER}))
    big = signed(setup, params={"x": "a" * 1500})
    huge = big.body + b" " * protocol.MAX_MESSAGE_BYTES
    cases.append(("oversized", huge, {protocol.CLIENT_HEADER: INSURER,
                                      protocol.SIGNATURE_HEADER: protocol.sign(setup.insurer.key, huge)}))
    old = signed(setup, now=hub.clock.now() - timedelta(minutes=6))
    cases.append(("expired", old.body, old.headers))
    future = signed(setup, now=hub.clock.now() + timedelta(minutes=6))
    cases.append(("expired", future.body, future.headers))
    nobody = signed(setup, provider="JP/LG/999999/jumin")
    cases.append(("unknown-provider", nobody.body, nobody.headers))
    no_item = signed(setup, item="jumin/tax-records")
    cases.append(("unknown-item", no_item.body, no_item.headers))
    other_task = signed(setup, procedure="kenpo-other")
    cases.append(("not-permitted", other_task.body, other_task.headers))
    not_in_table = signed(setup, item="jumin/residence")
    cases.append(("not-permitted", not_in_table.body, not_in_table.headers))
    foreign = signed(setup, subject=setup.pension_code)  # the pension service's code for the person
    cases.append(("unknown-code", foreign.body, foreign.headers))
    invented = signed(setup, subject="A" * 24)
    cases.append(("unknown-code", invented.body, invented.headers))

    before = tree_size(hub)
    for n, (code, body, headers) in enumerate(cases):
        status, answer, response_headers = send(client, setup, body, headers)
        refusal(status, answer, response_headers, code)
        assert answer["log"]["leaf_index"] == before + n, code
    assert setup.calls == []

    # Replay: the first use passes, the second is refused; the provider was reached once.
    first = send(client, setup, good.body, good.headers)
    assert first[0] == 200
    replayed = send(client, setup, good.body, good.headers)
    refusal(*replayed, "replayed")
    assert len(setup.calls) == 1

    entries = hub.entries(before, before + len(cases) + 1)["entries"]
    logged = [json.loads(base64.b64decode(e["leaf_input"])) for e in entries]
    assert [e["reason"] for e in logged] == [c[0] for c in cases] + ["", "replayed"]
    assert all(e["outcome"] == "refused" for e in logged[:len(cases)])


def test_a_member_cannot_learn_or_use_another_members_code(lite: tuple[World, Setup, TestClient]) -> None:
    _, setup, client = lite
    hub = setup.hub
    codes = {setup.insurer_code, setup.pension_code, hub.enrol(JUMIN_A, LG_A, setup.resident_id)}
    assert len(codes) == 3  # three members, three unrelated codes for one person
    assert hub.enrol(INSURER, LG_A, setup.resident_id) == setup.insurer_code  # stable
    spouse_code = hub.enrol(INSURER, LG_A, setup.spouse_id)
    assert spouse_code not in codes
    # The pension service, allowed jumin/residence, gets data but no code of anyone else.
    pension = http_client(client, PENSION, setup.pension.key, hub)
    result = pension.exchange(JUMIN_A, "jumin/residence", "nenkin-jukyu", setup.pension_code)
    assert result.ok and result.data["address"].startswith("本町一丁目")
    raw = json.dumps(result.response)
    assert not any(c in raw for c in codes - {setup.pension_code})
    # Its own code, sent as if it were the insurer's, is not the insurer's.
    insurer = http_client(client, INSURER, setup.insurer.key, hub)
    refused = insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.pension_code)
    assert refused.error == "unknown-code" and refused.data == {}
    # The member register shows certificates and items, never codes.
    register = client.get("/api/v1/linkage/members").text
    assert not any(c in register for c in codes)


def test_permission_table_is_versioned_published_and_validated(lite: tuple[World, Setup, TestClient]) -> None:
    _, setup, client = lite
    published = client.get("/api/v1/linkage/permissions").json()
    assert published["version"] == 1 and len(published["rules"]) == 2
    admin = bearer(client, "platform")
    bad = client.post("/api/v1/linkage/permissions", headers=admin, json={"rules": [
        {"requester": "not a member", "provider": JUMIN_A, "item": ITEM, "procedure": PROCEDURE,
         "legal_basis": ""}]})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"rules[0].requester", "rules[0].legal_basis"}
    clerk = client.post("/api/v1/linkage/permissions", headers=bearer(client, "clerk-a"), json={"rules": []})
    assert clerk.status_code == 403
    # Version 2 drops the insurer's rule: the same request is now refused.
    second = client.post("/api/v1/linkage/permissions", headers=admin, json={"rules": [
        published["rules"][1]], "note": "insurer rule withdrawn"})
    assert second.status_code == 201 and second.json()["version"] == 2
    setup.hub._reload_rules(force=True)
    insurer = http_client(client, INSURER, setup.insurer.key, setup.hub)
    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).error == "not-permitted"
    old = client.get("/api/v1/linkage/permissions", params={"version": 1}).json()
    assert old["rules"] == published["rules"] and old["digest"] == published["digest"]
    assert [v["version"] for v in client.get("/api/v1/linkage/permissions/versions").json()] == [2, 1]


def test_wildcard_provider_rule_covers_every_municipality_but_not_other_subsystems() -> None:
    from kiban.linkage.model import Rule
    rule = Rule(INSURER, "JP/LG/*/jumin", ITEM, PROCEDURE, BASIS)
    assert rule.matches(INSURER, JUMIN_A, ITEM, PROCEDURE)
    assert rule.matches(INSURER, JUMIN_B, ITEM, PROCEDURE)
    assert not rule.matches(INSURER, "JP/LG/131016/zeimu", ITEM, PROCEDURE)
    assert not rule.matches(INSURER, "JP/GOV/131016/jumin", ITEM, PROCEDURE)
    assert not rule.matches(PENSION, JUMIN_A, ITEM, PROCEDURE)


def test_member_registration_checks_the_certificate(lite: tuple[World, Setup, TestClient],
                                                    tmp_path: object) -> None:
    _, setup, client = lite
    hub = setup.hub
    admin = bearer(client, "platform")
    agency = new_agency(hub, "JP/GOV/kokuho/shikaku", "国保連")
    wrong_name = client.post("/api/v1/linkage/members", headers=admin, json={
        "id": "JP/GOV/kokuho/other", "kind": "agency", "name": "国保連", "certificate": agency.certificate})
    assert wrong_name.status_code == 422 and wrong_name.json()["field"] == "certificate"
    other_ca = testca.TestCA(tmp_path / "other-ca")  # type: ignore[operator]
    other_ca.init(hub.clock.now())
    untrusted = new_agency(hub, "JP/GOV/kokuho/shikaku", "国保連", ca=other_ca)
    refused = client.post("/api/v1/linkage/members", headers=admin, json={
        "id": "JP/GOV/kokuho/shikaku", "kind": "agency", "name": "国保連", "certificate": untrusted.certificate})
    assert refused.status_code == 422 and "trusted" in refused.json()["title_en"]
    assert client.post("/api/v1/linkage/members", headers=bearer(client, "clerk-a"), json={
        "id": "JP/GOV/kokuho/shikaku", "kind": "agency", "name": "x"}).status_code == 403
    ok = client.post("/api/v1/linkage/members", headers=admin, json={
        "id": "JP/GOV/kokuho/shikaku", "kind": "agency", "name": "国保連", "certificate": agency.certificate,
        "endpoint": "http://127.0.0.1:9/exchange", "items": {"kokuho/eligibility": "資格情報"}})
    assert ok.status_code == 201 and ok.json()["items"] == ["kokuho/eligibility"]
    with pytest.raises(ValidationFailed):
        hub.register_member("JP/GOV/x/y", "agency", "x", endpoint="http://127.0.0.1:9/e")  # no certificate
    # A suspended member is refused like an unknown one.
    setup.hub.suspend_member(INSURER)
    insurer = http_client(client, INSURER, setup.insurer.key, setup.hub)
    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).error == "unknown-member"


def test_resident_sees_own_exchanges_with_proofs_and_other_municipalities_see_nothing(
        lite: tuple[World, Setup, TestClient]) -> None:
    _, setup, client = lite
    insurer = http_client(client, INSURER, setup.insurer.key, setup.hub)
    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).ok
    assert insurer.exchange(JUMIN_A, ITEM, "kenpo-other", setup.insurer_code).error == "not-permitted"
    spouse_code = setup.hub.enrol(INSURER, LG_A, setup.spouse_id)
    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, spouse_code).ok
    response = client.get(f"/api/v1/municipalities/{LG_A}/residents/{setup.resident_id}/exchanges",
                          headers=bearer(client, "clerk-a"))
    assert response.status_code == 200
    view = response.json()
    assert [(e["client"], e["outcome"]) for e in view["exchanges"]] == [(INSURER, "provided"), (INSURER, "refused")]
    root = base64.b64decode(view["sth"]["sha256_root_hash"])
    for e in view["exchanges"]:
        assert e["verified"] and e["legal_basis"] in (BASIS, "")
        leaf = merkle.leaf_hash(e["entry"].encode())
        proof = [base64.b64decode(p) for p in e["audit_path"]]
        assert merkle.verify_inclusion(e["leaf_index"], view["sth"]["tree_size"], leaf, proof, root)
    spouse = setup.hub.exchanges_of_resident(LG_A, setup.spouse_id)["exchanges"]
    assert len(spouse) == 1
    other = client.get(f"/api/v1/municipalities/{LG_A}/residents/{setup.resident_id}/exchanges",
                       headers=bearer(client, "clerk-b"))
    assert other.status_code == 403
    assert setup.hub.exchanges_of_resident(LG_B, setup.resident_id)["exchanges"] == []


def test_row_level_security_hides_other_municipalities_exchanges(pg_world: World) -> None:
    setup = build(pg_world)
    assert InProcessClient(setup.hub, INSURER).hub is setup.hub
    result = _exchange_in_process(setup)
    assert result
    from sqlalchemy import text
    with pg_world.svc.db.tenant(LG_B) as conn:
        assert conn.execute(text("SELECT count(*) FROM linkage_resident_exchanges")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM linkage_residents")).scalar() == 0
    with pg_world.svc.db.tenant(LG_A) as conn:
        assert conn.execute(text("SELECT count(*) FROM linkage_resident_exchanges")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM linkage_residents")).scalar() == 1
    view = setup.hub.exchanges_of_resident(LG_A, setup.resident_id)["exchanges"]
    assert [(e["client"], e["verified"]) for e in view] == [(INSURER, True)]
    assert setup.hub.exchanges_of_resident(LG_B, setup.resident_id)["exchanges"] == []
    assert setup.hub.verify_log() == []


def _exchange_in_process(setup: Setup) -> bool:
    """The insurer's signed request handed to the hub in-process (the hub's own API)."""
    out = protocol.build_request(INSURER, setup.insurer.key, JUMIN_A, ITEM, PROCEDURE, setup.insurer_code,
                                 setup.hub.clock.now())
    answer = setup.hub.exchange(out.body, INSURER, out.headers[protocol.SIGNATURE_HEADER])
    return answer.status == 200
