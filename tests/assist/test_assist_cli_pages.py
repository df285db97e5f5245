"""`kiban assist ask|eval|import|seed-demo` through the real command line, and the public and
console pages (no-JavaScript answers escaped, CSRF on every form, CSV import by the console)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kiban.cli import app
from kiban_testkit import LG_A, PASSWORD


def test_ask_eval_and_import_on_the_command_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'kiban.db'}")
    monkeypatch.delenv("KIBAN_DATABASE_ADMIN_URL", raising=False)
    monkeypatch.setenv("KIBAN_MODE", "dev")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    run("db", "upgrade")
    run("municipality", "create", "131016", "千代田区", "東京都")
    run("staff", "create", "admin", "管理 桜子", "--roles", "municipality_admin", "--lgcode",
        "131016", "--password", PASSWORD)
    assert "FAQs" in run("assist", "seed-demo")
    answered = run("assist", "ask", "131016", "マイナンバーカードを申し込みたい")
    assert "交付申請書の郵送" in answered and "STD-0012" in answered
    handoff = run("assist", "ask", "131016", "What is the capital of France?")
    assert "/assist/131016/inquiry" in handoff
    as_json = json.loads(run("assist", "ask", "131016", "住民票が欲しい", "--json"))
    assert as_json["answer"]["ref"] == "STD-0006"
    assert "Please type a question" in run("assist", "ask", "131016", " ", code=2)
    assert "not supported" in run("assist", "ask", "131016", "Как дела?", code=2)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in [
        {"lgcode": "131016", "question": "住民票が欲しい", "expected": "STD-0006"},
        {"lgcode": "131016", "question": "How do I apply for a My Number card?",
         "expected": "STD-0012"},
        {"lgcode": "131016", "question": "燃えるごみは何曜日に出せますか", "expected": "131016-0001"},
    ]), encoding="utf-8")
    report = run("assist", "eval", str(cases), "--misses")
    assert re.search(r"questions\t3\nrecall@1\t1\.000\nrecall@5\t1\.000\nMRR\t1\.000", report)
    assert "recall@5" in run("assist", "eval", str(cases), "--mode", "bm25")
    csv = tmp_path / "faqs.csv"
    csv.write_text("question,answer,category,last_reviewed\n,回答,施設,2026-11-01\n",
                   encoding="utf-8")
    refused = run("assist", "import", "131016", str(csv), "--as", "admin", code=2)
    assert "row 1, question" in refused
    csv.write_text("question,answer,category,last_reviewed,review_state\n"
                   "図書館の開館時間は?,9時から20時までです。,施設,2026-11-01,approved\n",
                   encoding="utf-8")
    assert "created 1" in run("assist", "import", "131016", str(csv), "--as", "admin")


def test_public_page_answers_without_javascript_and_escapes(client: TestClient) -> None:
    page = client.get(f"/assist/{LG_A}")
    assert page.status_code == 200 and "千代田区の手続きやくらし" in page.text
    assert '<script src="/static/assist-widget.js" defer></script>' in page.text
    answered = client.post(f"/assist/{LG_A}", data={"question": "住民票が欲しいです"})
    assert answered.status_code == 200 and "出典 / Source: 標準FAQ(共通)・STD-0006" in answered.text
    script = client.post(f"/assist/{LG_A}", data={"question": "<script>alert(1)</script>"})
    assert script.status_code == 422 and "<script>alert(1)" not in script.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script.text  # kept in the box, escaped
    assert client.get("/assist/999999").status_code == 404
    assert "お問い合わせ" in client.get(f"/assist/{LG_A}/inquiry").text
    assert client.get("/static/assist-widget.js").status_code == 200


def _login(client: TestClient, username: str) -> str:
    client.post("/login", data={"username": username, "password": PASSWORD},
                follow_redirects=False)
    page = client.get("/console/assist/settings")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


def test_console_pages_edit_faqs_import_and_settings_with_csrf(client: TestClient) -> None:
    csrf = _login(client, "admin-a")
    assert csrf
    console = client.get("/console/assist")
    assert console.status_code == 200 and "131016-0001" in console.text
    form = {"question": "区民プールの営業時間は?", "answer": "9時から21時までです。",
            "category": "施設", "department": "スポーツ振興課", "last_reviewed": "2026-11-01",
            "review_state": "approved", "keywords": "", "url": ""}
    assert client.post("/console/assist/faqs/new", data=form,
                       follow_redirects=False).status_code == 403  # no CSRF token
    made = client.post("/console/assist/faqs/new", data={**form, "csrf_token": csrf},
                       follow_redirects=False)
    assert made.status_code == 303
    bad = client.post("/console/assist/faqs/new",
                      data={**form, "question": "", "csrf_token": csrf})
    assert bad.status_code == 422 and 'id="question-error"' in bad.text
    edit = client.get("/console/assist/faqs/131016-0011")
    assert "区民プールの営業時間は?" in edit.text
    upload = client.post("/console/assist/import", data={"csrf_token": csrf}, files={
        "file": ("faqs.csv", "question,answer,category,last_reviewed\nq,,c,2026-11-01\n",
                 "text/csv")})
    assert upload.status_code == 422 and "1行目 answer" in upload.text
    good = client.post("/console/assist/import", data={"csrf_token": csrf}, files={
        "file": ("faqs.csv", "question,answer,category,last_reviewed\nq,a,c,2026-11-01\n",
                 "text/csv")}, follow_redirects=False)
    assert good.status_code == 303
    saved = client.post("/console/assist/settings", data={
        "csrf_token": csrf, "greeting_ja": "ようこそ", "greeting_en": "Welcome",
        "tone": "polite", "categories": "", "adopt_shared": "1", "threshold": "x",
        "inquiry_url": ""})
    assert saved.status_code == 422 and 'id="threshold-error"' in saved.text
    assert client.post("/console/assist/shared/STD-0050", data={
        "csrf_token": csrf, "mode": "opt_out", "answer": ""},
        follow_redirects=False).status_code == 303
    assert 'value="opt_out" selected' in client.get("/console/assist/shared").text
    assert client.post("/console/assist/faqs/131016-0011/delete", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303


def test_console_is_for_municipality_administrators(client: TestClient) -> None:
    _login(client, "clerk-a")
    assert client.get("/console/assist").status_code == 403
