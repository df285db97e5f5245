"""What residents type into the assistant (issue 10): unanswered questions and feedback are
under row-level security on PostgreSQL (migration 0017), so one municipality cannot read or
write another's even with a query that forgets its `WHERE lgcode`; and telephone numbers,
e-mail addresses and 12-digit numbers like a 個人番号 are scrubbed before a question is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from kiban.assist.model import (
    SCRUBBED_EMAIL,
    SCRUBBED_NUMBER,
    SCRUBBED_PHONE,
    scrub_personal,
)
from kiban.assist.store import assist_feedback, assist_unanswered
from kiban.platform.db import bypasses_row_security
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer

AT = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("typed", "stored"), [
    ("電話は03-1234-5678です", f"電話は{SCRUBBED_PHONE}です"),
    ("090 1234 5678に折り返して", f"{SCRUBBED_PHONE}に折り返して"),
    ("（０３）１２３４－５６７８", SCRUBBED_PHONE),
    ("call me on +81-90-1234-5678", f"call me on {SCRUBBED_PHONE}"),
    ("フリーダイヤル0120-123-456", f"フリーダイヤル{SCRUBBED_PHONE}"),
    ("番号は123456789012です", f"番号は{SCRUBBED_NUMBER}です"),
    ("マイナンバー1234 5678 9012", f"マイナンバー{SCRUBBED_NUMBER}"),
    ("１２３４－５６７８－９０１２", SCRUBBED_NUMBER),
    ("mail taro.yamada+x@example.co.jp please", f"mail {SCRUBBED_EMAIL} please"),
    ("連絡先 hanako＠example.jp", f"連絡先 {SCRUBBED_EMAIL}"),
    ("03-1234-5678 2026年に転入", f"{SCRUBBED_PHONE} 2026年に転入"),
])
def test_personal_data_is_scrubbed(typed: str, stored: str) -> None:
    assert scrub_personal(typed) == stored


@pytest.mark.parametrize("kept", [
    "2026-11-26に転入しました", "〒100-8111 千代田区", "住民票を5通", "法人番号1234567890123",
    "令和8年4月1日 10時", "税率は0.5%ですか", "第0123号の通知",
])
def test_ordinary_numbers_are_kept(kept: str) -> None:
    assert scrub_personal(kept) == kept


def _handoff_everything(world: World, lgcode: str) -> None:
    admin = world.svc.accounts.create(f"admin-{lgcode}", PASSWORD, "管理 四郎",
                                      ["municipality_admin"], lgcode, AT)
    world.svc.assist.save_settings(admin, lgcode, {"threshold": 1.0})


def test_stored_unanswered_question_is_scrubbed(sqlite_world: World) -> None:
    _handoff_everything(sqlite_world, LG_A)
    svc = sqlite_world.svc
    with TestClient(create_app(sqlite_world.backend.settings, svc.clock, svc.db)) as client:
        question = ("ビットコインの買い方を教えて。電話090-1234-5678、"
                    "メール taro@example.jp、番号123456789012")
        response = client.post(f"/api/v1/assist/{LG_A}/ask", json={"question": question})
        assert response.status_code == 200 and response.json()["status"] == "handoff"
        listed = client.get(f"/api/v1/assist/{LG_A}/unanswered",
                            headers=bearer(client, f"admin-{LG_A}")).json()
    assert [i["question"] for i in listed] == [
        f"ビットコインの買い方を教えて。電話{SCRUBBED_PHONE}、メール {SCRUBBED_EMAIL}、"
        f"番号{SCRUBBED_NUMBER}"]
    with svc.db.tenant(LG_A) as conn:
        raw = conn.execute(select(assist_unanswered.c.question)).scalars().all()
    assert "090" not in str(raw) and "taro" not in str(raw) and "123456789012" not in str(raw)


def test_one_municipality_cannot_read_anothers_questions_in_the_database(
        pg_world: World) -> None:
    svc = pg_world.svc
    for lgcode in (LG_A, LG_B):
        _handoff_everything(pg_world, lgcode)
    svc.assist.ask(LG_A, "千代田区の質問: ビットコインの買い方")
    svc.assist.ask(LG_B, "横浜市の質問: ラーメンの美味しい店")
    with svc.db.tenant(LG_A) as conn:
        assert not bypasses_row_security(conn)  # the application role: RLS applies to it
        conn.execute(insert(assist_feedback).values(lgcode=LG_A, ref="STD-0001",
                                                    helpful=True, at=AT))

    # No WHERE lgcode in these queries: only the policies stand between the municipalities.
    with svc.db.tenant(LG_B) as conn:
        seen = conn.execute(select(assist_unanswered.c.lgcode,
                                   assist_unanswered.c.question)).all()
        assert [tuple(r) for r in seen] == [(LG_B, "横浜市の質問: ラーメンの美味しい店")]
        assert conn.execute(select(assist_feedback)).all() == []
        # Updating another's rows touches nothing.
        done = conn.execute(assist_unanswered.update().values(resolved=True))
        assert done.rowcount == 1
    with svc.db.tenant(LG_A) as conn:
        mine = conn.execute(select(assist_unanswered.c.question,
                                   assist_unanswered.c.resolved)).all()
        assert [tuple(r) for r in mine] == [("千代田区の質問: ビットコインの買い方", False)]
        assert len(conn.execute(select(assist_feedback)).all()) == 1
    # Writing a row for another municipality is refused by the policy's WITH CHECK.
    for table, values in ((assist_unanswered, {"question": "x", "lang": "ja", "best_ref": "",
                                               "confidence": 0.0, "asked_at": AT,
                                               "resolved": False}),
                          (assist_feedback, {"ref": "STD-0001", "helpful": False, "at": AT})):
        with pytest.raises(DBAPIError, match="row-level security"), \
                svc.db.tenant(LG_B) as conn:
            conn.execute(insert(table).values(lgcode=LG_A, **values))
    # Outside any municipality (the platform transaction) nothing is visible.
    with svc.db.platform() as conn:
        assert conn.execute(select(assist_unanswered)).all() == []

    # Through the service and HTTP: each administrator lists only their own.
    with TestClient(create_app(pg_world.backend.settings, svc.clock, svc.db)) as client:
        for lgcode, expected in ((LG_A, ["千代田区の質問: ビットコインの買い方"]),
                                 (LG_B, [])):  # 横浜市 resolved its own above
            headers = bearer(client, f"admin-{lgcode}")
            listed = client.get(f"/api/v1/assist/{lgcode}/unanswered", headers=headers).json()
            assert [i["question"] for i in listed] == expected
        other = client.get(f"/api/v1/assist/{LG_A}/unanswered",
                           headers=bearer(client, f"admin-{LG_B}"))
        assert other.status_code == 403
