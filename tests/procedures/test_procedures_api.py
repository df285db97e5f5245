"""Issue 7 parts 2, 3 and 6 through the HTTP API (TestClient): every procedure of the catalog
applied for with a signed payload, verified, matched to the record, evidence fetched through
the hub, queued, claimed and decided by staff, with the resident's notifications; on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from kiban.platform import ledger
from kiban.procedures import store
from kiban.standard.kit.tax_checks import SINGLE_5M, body
from kiban_testkit import LG_A, LG_B

from .procedures_kit import VALID_FORMS, Env

Q = f"/api/v1/municipalities/{LG_A}/procedures/applications"


def tax_assessment(env: Env) -> str:
    calc = body(**SINGLE_5M)
    request = {**calc, "taxpayer": {**calc["taxpayer"], "family_name": "山田", "given_name": "太郎",
                                    "address": {"town_code": "0001001", "banchi": "1番地"}},
               "collection": {"method": "ordinary"}}
    made = env.client.post(f"/api/v1/municipalities/{LG_A}/tax/assessments", json=request,
                           headers=env.staff["tax-a"])
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def count_rows(env: Env, table: Any) -> int:
    with env.world.svc.db.tenant(LG_A) as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(table.c.lgcode == LG_A)).scalar_one())


def test_every_procedure_end_to_end(env: Env) -> None:
    env.login("taro")
    assessment = tax_assessment(env)
    # The 転出届 last: its approval moves the resident out (the life-events service, when wired).
    for procedure_id in sorted(VALID_FORMS, key=lambda p: p == "tenshutsu"):
        made = env.submit(procedure_id, email=None)
        assert made.status_code == 201, (procedure_id, made.text)
        app = made.json()
        assert app["state"] == "submitted" and len(app["content_hash"]) == 64
        # Staff: the queue by procedure and state, the verified identity and the evidence.
        listed = env.client.get(Q, params={"procedure": procedure_id, "state": "submitted"},
                                headers=env.staff["clerk-a"]).json()
        assert [i["id"] for i in listed["items"]] == [app["id"]]
        approver = "tax-a" if procedure_id == "tax-certificate-request" else "clerk-a"
        seen = env.staff_get(app["id"], approver).json()
        assert seen["signer"]["name"] == "山田 太郎" and seen["signer"]["resident_id"] == env.residents["taro"]
        assert seen["signed_payload"] and seen["signature"]
        proc = env.world.svc.procedures.procedure(procedure_id)
        assert [e["item"] for e in seen["evidence"]] == [e.item for e in proc.evidence]
        for e in seen["evidence"]:
            assert e["status"] == "ok", (e["reason"], e.get("reason_en"))
            assert e["hub_legal_basis"] == e["legal_basis"] and e["leaf_index"] is not None
        if procedure_id == "jido-teate":
            income = next(e for e in seen["evidence"] if e["item"] == "zeimu/income-certificate")
            assert income["data"]["total_income"] == 3_560_000
        assert env.staff_post(app["id"], "claim", approver).json()["state"] == "in_review"
        extra = {"assessment_id": assessment} if procedure_id == "tax-certificate-request" else {}
        decided = env.staff_post(app["id"], "approve", approver, **extra)
        assert decided.status_code == 200, (procedure_id, decided.text)
        assert decided.json()["state"] == "approved"
        mine = env.client.get(f"/portal/api/procedures/applications/{app['id']}").json()
        assert mine["state"] == "approved" and "signer" not in mine
        if proc.delivers:
            pdf = env.client.get(f"/portal/api/procedures/applications/{app['id']}/document")
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            assert b"/ByteRange" in pdf.content  # signed
            assert mine["document_serial"]
        else:
            assert env.client.get(f"/portal/api/procedures/applications/{app['id']}/document").status_code == 404
    notes = env.client.get("/portal/api/procedures/notifications").json()["items"]
    assert len(notes) == 3 * len(VALID_FORMS)  # submitted, in review, approved
    assert {n["kind"] for n in notes} == {"submitted", "in_review", "approved"}
    assert env.client.post("/portal/api/procedures/notifications/read", json={}).json()["marked"] == len(notes)
    # Every step is in the ledger, and the chain verifies.
    with env.world.svc.db.tenant(LG_A) as conn:
        kinds = [e["kind"] for e in ledger.entries(conn, LG_A) if e["kind"].startswith("procedure.")]
        assert kinds.count("procedure.submit") == len(VALID_FORMS)
        assert kinds.count("procedure.approve") == len(VALID_FORMS)
        assert ledger.verify(conn, LG_A) == []


def test_reject_and_correction_reach_the_resident(env: Env) -> None:
    env.login("taro")
    first = env.submit("inquiry").json()
    assert env.staff_post(first["id"], "reject", reason="").status_code == 422  # a reason is required
    rejected = env.staff_post(first["id"], "reject", reason="担当外の内容です。").json()
    assert rejected["state"] == "rejected" and rejected["reason"] == "担当外の内容です。"
    again = env.staff_post(first["id"], "approve")
    assert again.status_code == 409
    second = env.submit("juminhyo-request").json()
    asked = env.staff_post(second["id"], "request-correction", reason="使用目的を具体的にご記入ください。").json()
    assert asked["state"] == "correction_requested"
    mine = env.client.get(f"/portal/api/procedures/applications/{second['id']}").json()
    assert mine["reason"] == "使用目的を具体的にご記入ください。"
    fixed = env.submit("juminhyo-request", {**VALID_FORMS["juminhyo-request"], "purpose": "銀行口座の開設"},
                       draft_id=second["id"])
    assert fixed.status_code == 201 and fixed.json()["id"] == second["id"]
    assert fixed.json()["state"] == "submitted"
    steps = [s["action"] for s in env.staff_get(second["id"]).json()["steps"]]
    assert steps == ["submit", "request_correction", "submit"]
    kinds = [n["kind"] for n in env.client.get("/portal/api/procedures/notifications").json()["items"]]
    assert "rejected" in kinds and "correction_requested" in kinds


def test_tenant_isolation_and_roles(env: Env) -> None:
    env.login("taro")
    app = env.submit("inquiry").json()
    other = env.client.get(f"/api/v1/municipalities/{LG_B}/procedures/applications", headers=env.staff["clerk-a"])
    assert other.status_code == 403
    foreign = env.client.get(Q, headers=env.staff["clerk-b"])
    assert foreign.status_code == 403
    assert env.client.get(f"{Q}/{app['id']}", headers=env.staff["clerk-b"]).status_code == 403
    # Under row-level security LG_B's transaction sees none of LG_A's rows.
    with env.world.svc.db.tenant(LG_B) as conn:
        rows = conn.execute(select(store.procedure_applications.c.id)).all()
        assert rows == [] or not env.world.svc.db.is_postgres
    # The other resident of the household does not see it.
    env.login("hanako")
    assert env.client.get(f"/portal/api/procedures/applications/{app['id']}").status_code == 404
    assert env.client.get("/portal/api/procedures/applications").json()["items"] == []
    assert count_rows(env, store.procedure_applications) == 1
