"""Issue 7, bad input: invalid form data refused field by field; a signature that does not
verify, or a signer who is not the resident, stops the application with a clear message; an
evidence fetch the permission table refuses is shown to staff with its reason; a duplicate
submission creates nothing; nothing the resident entered is lost (the draft keeps it)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from kiban.procedures import store
from kiban.procedures.service import canonical_payload
from kiban_testkit import LG_A, World

from .procedures_kit import VALID_FORMS, Env, build_env, permission_rules

DRAFTS = "/portal/api/procedures/drafts"


def applications(env: Env, state: str | None = None) -> int:
    t = store.procedure_applications
    query = select(func.count()).select_from(t).where(t.c.lgcode == LG_A)
    if state:
        query = query.where(t.c.state == state)
    with env.world.svc.db.tenant(LG_A) as conn:
        return int(conn.execute(query).scalar_one())


def draft_form(env: Env, draft_id: str) -> dict[str, Any]:
    found = env.client.get(f"/portal/api/procedures/applications/{draft_id}")
    assert found.status_code == 200
    assert found.json()["state"] == "draft"
    return dict(found.json()["form"])


def test_invalid_form_is_refused_field_by_field_and_kept(lite: Env) -> None:
    lite.login()
    bad = {"purpose": "", "scope": "neighbours", "copies": 99, "include_honseki": "yes"}
    refused = lite.submit("juminhyo-request", bad)
    assert refused.status_code == 422
    problem = refused.json()
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"purpose", "scope", "copies", "include_honseki"}
    assert all(e["ja"] and e["en"] for e in problem["errors"])
    assert draft_form(lite, problem["draft_id"]) == bad  # as entered
    assert applications(lite, "submitted") == 0
    missing = lite.submit("tenshutsu", {"move_date": "2026-02-30"})
    assert {e["field"] for e in missing.json()["errors"]} == {"move_date", "new_lgcode", "new_address", "members"}


def test_a_signature_that_does_not_verify_stops_the_application(lite: Env) -> None:
    lite.login()
    form = VALID_FORMS["inquiry"]
    payload = canonical_payload(LG_A, "inquiry", form)
    other = lite.sign(b"something else")
    refused = lite.submit("inquiry", form, payload=payload, signature=other)
    assert refused.status_code == 422
    body = refused.json()
    assert body["type"].endswith("/signature-digest_mismatch") and "署名" in body["title_ja"]
    assert draft_form(lite, body["draft_id"]) == form
    garbage = lite.submit("inquiry", form, payload=payload, signature=base64.b64encode(b"junk").decode())
    assert garbage.status_code == 422 and garbage.json()["type"].endswith("/signature-malformed")
    unsigned = lite.submit("inquiry", form, payload=payload, signature="")
    assert unsigned.status_code == 422 and unsigned.json()["type"].endswith("/unsigned")
    assert applications(lite, "submitted") == 0
    # The draft can be submitted once signed properly: nothing was lost.
    fixed = lite.submit("inquiry", form, payload=payload, draft_id=body["draft_id"])
    assert fixed.status_code == 201 and fixed.json()["id"] == body["draft_id"]


def test_a_signer_who_is_not_the_resident_stops_the_application(lite: Env) -> None:
    lite.login("taro")
    refused = lite.submit("kokuho-enrolment", signer="hanako")  # another resident's card
    assert refused.status_code == 403
    body = refused.json()
    assert body["type"].endswith("/signer-mismatch") and "一致しません" in body["title_ja"]
    assert draft_form(lite, body["draft_id"]) == VALID_FORMS["kokuho-enrolment"]
    # A card that was never linked to the record.
    stranger = lite.pki.issue_card(LG_A, "x", "鈴木 一郎", "東京都千代田区本町一丁目1番地", "1990-01-01", "1", "1234")
    lite.cards["stranger"] = stranger
    unlinked = lite.submit("inquiry", signer="stranger")
    assert unlinked.status_code == 403 and unlinked.json()["type"].endswith("/signer-not-linked")
    assert applications(lite, "submitted") == 0


def test_a_duplicate_submission_creates_nothing(lite: Env) -> None:
    lite.login()
    payload = canonical_payload(LG_A, "inquiry", VALID_FORMS["inquiry"])
    first = lite.submit("inquiry", payload=payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = lite.submit("inquiry", payload=payload)  # the same signed content
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = canonical_payload(LG_A, "inquiry", {**VALID_FORMS["inquiry"], "subject": "別件"})
    reused = lite.submit("inquiry", payload=other, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409
    assert applications(lite) == 1
    notes = lite.client.get("/portal/api/procedures/notifications").json()["items"]
    assert len(notes) == 1


def test_bad_payloads_and_no_session_are_refused(lite: Env) -> None:
    assert lite.client.get("/portal/api/procedures/applications").status_code == 401
    lite.login()
    bad = lite.client.post("/portal/api/procedures/applications", json={"payload": "%%%", "signature": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "payload"
    elsewhere = canonical_payload("141003", "inquiry", VALID_FORMS["inquiry"])
    assert lite.submit("inquiry", payload=elsewhere).status_code == 422
    unknown = lite.submit("inquiry", payload=canonical_payload(LG_A, "no-such", {}))
    assert unknown.status_code == 404
    form_post = lite.client.post(DRAFTS, data={"procedure": "inquiry"})  # not JSON: refused (CSRF)
    assert form_post.status_code == 403
    saved = lite.client.post(DRAFTS, json={"procedure": "inquiry", "form": {"subject": "途中"}})
    assert saved.status_code == 201 and saved.json()["form"] == {"subject": "途中"}


@pytest.fixture
def refusing(sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The permission table lacks the 児童手当's income rule."""
    yield from build_env(sqlite_world, tmp_path, monkeypatch,
                         rules=permission_rules(skip=(("jido-teate", "zeimu/income-certificate"),)))


def test_an_evidence_refusal_is_shown_to_staff_with_its_reason(refusing: Env) -> None:
    refusing.login()
    made = refusing.submit("jido-teate")
    assert made.status_code == 201  # the application is queued; staff decide
    seen = refusing.staff_get(made.json()["id"]).json()
    evidence = {e["item"]: e for e in seen["evidence"]}
    assert evidence["jumin/household-composition"]["status"] == "ok"
    income = evidence["zeimu/income-certificate"]
    assert income["status"] == "refused" and income["reason"] == "not-permitted"
    assert income["reason_ja"] and income["leaf_index"] is not None  # logged by the hub
    # The staff page shows it too.
    signed_in = refusing.client.post("/login", data={"username": "clerk-a", "password": "correct-horse-battery"})
    assert signed_in.status_code == 303
    page = refusing.client.get(f"/console/procedures/{made.json()['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "not-permitted" in page.text and "取得できませんでした" in page.text
