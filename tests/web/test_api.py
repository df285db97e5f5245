"""The JSON API through HTTP: problem+json errors, idempotency, tokens, tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, move_in_data, person


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as c:
        yield c


def token(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def base(lgcode: str = LG_A) -> str:
    return f"/api/v1/municipalities/{lgcode}"


def test_move_in_search_and_read_through_api(client: TestClient) -> None:
    auth = token(client, "clerk-a")
    created = client.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
    assert created.status_code == 201, created.text
    ids = created.json()["resident_ids"]
    found = client.get(f"{base()}/residents", params={"name": "やまだ"}, headers=auth).json()
    assert found["total"] == 2
    one = client.get(f"{base()}/residents/{ids[0]}", headers=auth).json()
    assert one["full_name"] == "山田 太郎"
    history = client.get(f"{base()}/residents/{ids[0]}/history", headers=auth).json()
    assert history[0]["kind"] == "move_in"
    board = client.get(f"{base()}/dashboard", headers=auth).json()
    assert board["residents"] == 2 and sum(b["male"] + b["female"] for b in board["pyramid"]) == 2


def test_bad_input_is_problem_json_with_field_and_both_languages(client: TestClient) -> None:
    auth = token(client, "clerk-a")
    bad = move_in_data(members=[person(family_kana="yamada")])
    response = client.post(f"{base()}/changes/move-in", json=bad, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["field"] == "members[0].family_kana"
    assert body["title_ja"] and body["title_en"]
    # Schema-level errors (wrong type, unknown field) take the same shape.
    response = client.post(f"{base()}/changes/move-in",
                           json={**move_in_data(), "members": "x"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("members")
    response = client.post(f"{base()}/changes/move-in",
                           json={**move_in_data(), "surprise": 1}, headers=auth)
    assert response.status_code == 422
    assert client.get(f"{base()}/residents", params={"name": "ヤマダ"},
                      headers=auth).json()["total"] == 0


def test_idempotency_key_replays_and_refuses_a_different_body(client: TestClient) -> None:
    auth = token(client, "clerk-a") | {"Idempotency-Key": "move-in-0001"}
    first = client.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
    again = client.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert client.get(f"{base()}/residents", params={"name": "ヤマダ"},
                      headers=auth).json()["total"] == 2
    other = client.post(f"{base()}/changes/move-in",
                        json=move_in_data(previous_address="別の住所"), headers=auth)
    assert other.status_code == 409


def test_a_stored_answer_is_replayed_only_to_its_own_caller(client: TestClient) -> None:
    key = {"Idempotency-Key": "move-in-0002"}
    first = client.post(f"{base()}/changes/move-in", json=move_in_data(),
                        headers=token(client, "super-a") | key)
    assert first.status_code == 201
    # Another municipality's staff with the same key and body: refused as any request for
    # another municipality is, learning nothing of the stored answer.
    foreign = client.post(f"{base()}/changes/move-in", json=move_in_data(),
                          headers=token(client, "clerk-b") | key)
    assert foreign.status_code == 403 and "resident_ids" not in foreign.text
    # A colleague replaying the key does not get the supervisor's answer either.
    colleague = client.post(f"{base()}/changes/move-in", json=move_in_data(),
                            headers=token(client, "clerk-a") | key)
    assert colleague.status_code == 409 and "resident_ids" not in colleague.text


def test_certificate_pdf_is_issued_with_serial(client: TestClient) -> None:
    auth = token(client, "clerk-a")
    ids = client.post(f"{base()}/changes/move-in", json=move_in_data(),
                      headers=auth).json()["resident_ids"]
    response = client.post(f"{base()}/certificates", json={"resident_ids": ids}, headers=auth)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    serial = response.headers["X-Certificate-Serial"]
    listed = client.get(f"{base()}/certificates", headers=auth).json()
    assert listed[0]["serial"] == serial
    # A clerk may not put the 個人番号 on a copy.
    denied = client.post(f"{base()}/certificates",
                         json={"resident_ids": ids, "my_number": True}, headers=auth)
    assert denied.status_code == 403


def test_staff_of_one_municipality_never_see_another(client: TestClient) -> None:
    a, b = token(client, "clerk-a"), token(client, "clerk-b")
    ids = client.post(f"{base()}/changes/move-in", json=move_in_data(),
                      headers=a).json()["resident_ids"]
    assert client.get(f"{base()}/residents/{ids[0]}", headers=b).status_code == 403
    assert client.get(f"{base()}/residents", params={"name": "ヤマダ"},
                      headers=b).status_code == 403
    assert client.post(f"{base()}/changes/move-in", json=move_in_data(),
                       headers=b).status_code == 403
    # Through its own municipality's URL, B cannot reach A's resident either.
    assert client.get(f"{base(LG_B)}/residents/{ids[0]}", headers=b).status_code == 404
    assert client.get(f"{base(LG_B)}/residents", params={"name": "ヤマダ"},
                      headers=b).json()["total"] == 0
    munis = client.get("/api/v1/municipalities", headers=b).json()
    assert [m["lgcode"] for m in munis] == [LG_B]


def test_unauthenticated_and_wrong_role(client: TestClient) -> None:
    assert client.get(f"{base()}/residents", params={"name": "ヤ"}).status_code == 401
    bad = client.post("/api/v1/tokens", json={"username": "clerk-a", "password": "wrong-pass"})
    assert bad.status_code == 401
    admin = token(client, "admin-a")
    assert client.get(f"{base()}/residents", params={"name": "ヤ"},
                      headers=admin).status_code == 403
    clerk = token(client, "clerk-a")
    assert client.post("/api/v1/municipalities", headers=clerk, json={
        "lgcode": "011002", "name": "札幌市", "prefecture": "北海道"}).status_code == 403


def test_platform_admin_registers_municipalities_with_check_digit(client: TestClient) -> None:
    auth = token(client, "platform")
    bad = client.post("/api/v1/municipalities", headers=auth,
                      json={"lgcode": "011001", "name": "札幌市", "prefecture": "北海道"})
    assert bad.status_code == 422 and bad.json()["field"] == "lgcode"
    ok = client.post("/api/v1/municipalities", headers=auth,
                     json={"lgcode": "011002", "name": "札幌市", "prefecture": "北海道"})
    assert ok.status_code == 201
    dup = client.post("/api/v1/municipalities", headers=auth,
                      json={"lgcode": "011002", "name": "札幌市", "prefecture": "北海道"})
    assert dup.status_code == 409
    assert "011002" in [m["lgcode"] for m in
                        client.get("/api/v1/municipalities", headers=auth).json()]


def test_municipality_settings_are_validated(client: TestClient) -> None:
    auth = token(client, "admin-a")
    ok = client.patch(f"/api/v1/municipalities/{LG_A}/settings", headers=auth,
                      json={"certificate_issuer_name": "千代田 一郎"})
    assert ok.status_code == 200 and ok.json()["certificate_issuer_name"] == "千代田 一郎"
    bad = client.patch(f"/api/v1/municipalities/{LG_A}/settings", headers=auth,
                       json={"custom_code_path": "x"})
    assert bad.status_code == 422
    other = client.patch(f"/api/v1/municipalities/{LG_B}/settings", headers=auth,
                         json={"certificate_fee": 200})
    assert other.status_code == 403


def test_openapi_document_lists_the_registry(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/api/v1/municipalities/{lgcode}/changes/move-in" in paths
    assert "/api/v1/municipalities/{lgcode}/residents" in paths


def test_a_refused_change_leaves_its_idempotency_key_free(client: TestClient) -> None:
    """The key is claimed in the change's own transaction: a refusal rolls the claim back,
    so a corrected request can use the same key."""
    auth = token(client, "clerk-a") | {"Idempotency-Key": "move-in-retry"}
    bad = move_in_data(address={"town_code": "9999999", "banchi": "1番地"})
    refused = client.post(f"{base()}/changes/move-in", json=bad, headers=auth)
    assert refused.status_code == 422
    assert refused.json()["field"] == "address.town_code"
    first = client.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
    assert first.status_code == 201
    again = client.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    # A 住民票コード already registered is refused with 409, as before.
    code = client.get(f"{base()}/residents/{first.json()['resident_ids'][0]}",
                      headers=auth).json()["juminhyo_code"]
    taken = move_in_data(members=[person(family_kana="サトウ", juminhyo_code=code)])
    response = client.post(f"{base()}/changes/move-in", json=taken,
                           headers={**auth, "Idempotency-Key": "move-in-taken"})
    assert response.status_code == 409
    assert response.json()["field"] == "juminhyo_code"


def test_concurrent_requests_with_one_key_make_one_change(world: World) -> None:
    import threading

    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    results: list[tuple[int, dict, str | None]] = []
    with TestClient(app) as first_client:
        auth = token(first_client, "clerk-a") | {"Idempotency-Key": "move-in-race"}

    def post() -> None:
        with TestClient(app) as c:
            r = c.post(f"{base()}/changes/move-in", json=move_in_data(), headers=auth)
            results.append((r.status_code, r.json(), r.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _, _ in results] == [201] * 4
    assert len({str(body) for _, body, _ in results}) == 1
    assert sum(1 for *_, replayed in results if replayed == "true") == 3
    with TestClient(app) as c:
        found = c.get(f"{base()}/residents", params={"name": "ヤマダ"},
                      headers={"Authorization": auth["Authorization"]}).json()
    assert found["total"] == 2
