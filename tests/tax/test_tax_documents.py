"""The tax documents as PDF: 特別徴収税額決定通知書 with its twelve months (June takes the
remainder), 税額決定・納税通知書 with the four 普通徴収 instalments (the first takes the
remainder), the certificates, and the 更正 notice; read back with pypdf."""

from __future__ import annotations

import io
from typing import Any

from assess_kit import officers, service
from pypdf import PdfReader

from kiban.documents import tax_notices
from kiban.standard import spec
from kiban.standard.kit.tax_checks import PENSIONER, SINGLE_5M, body
from kiban.tax.batch_model import instalments
from kiban_testkit import LG_A, World

LABELS = {k: str(v["name"]) for k, v in spec.current().items.items()}


def text_of(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF")
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def assessment(world: World, calc: dict[str, Any], method: str) -> tuple[Any, dict[str, Any]]:
    tax_a, _ = officers(world)
    collection: dict[str, Any] = {"method": method}
    if method == "special":
        collection["special_collector"] = {"number": "99000001", "name": "見本商事株式会社"}
    made = service(world).create(tax_a, LG_A, {
        **calc, "collection": collection,
        "taxpayer": {**calc["taxpayer"], "family_name": "見本", "given_name": "花子",
                     "address": {"town_code": "0001001", "banchi": "1番地"}}})
    return tax_a, made


def test_special_collection_notice(sqlite_world: World) -> None:
    tax_a, made = assessment(sqlite_world, body(**SINGLE_5M), "special")
    form = service(sqlite_world).notice(tax_a, LG_A, made["id"], "special-collection")
    text = text_of(tax_notices.render(form, municipality="東京都千代田区", labels=LABELS))
    assert "特別徴収税額決定通知書" in text and "見本商事株式会社" in text
    assert "240,500円" in text and "20,500円" in text and "2026-05" in text
    assert "審査請求" in text and "年税額" in text


def test_tax_notice_with_four_instalments(sqlite_world: World) -> None:
    tax_a, made = assessment(sqlite_world, PENSIONER, "ordinary")
    form = service(sqlite_world).notice(tax_a, LG_A, made["id"], "tax-notice")
    text = text_of(tax_notices.render(form, municipality="東京都千代田区", labels=LABELS))
    assert "納税通知書" in text and "214,500円" in text
    for amount in ("55,500円", "53,000円"):
        assert amount in text
    assert "2025-06" in text and "2026-01" in text and "納期限" in text


def test_certificates_and_correction_notice(sqlite_world: World) -> None:
    tax_a, made = assessment(sqlite_world, body(**SINGLE_5M), "ordinary")
    svc = service(sqlite_world)
    cert = svc.certificate(tax_a, LG_A, {"assessment_id": made["id"], "kind": "taxation"})
    text = text_of(tax_notices.render(cert, municipality="東京都千代田区", labels=LABELS))
    assert "所得・課税証明書" in text and "3,560,000円" in text and "千代田区長" in text
    request = dict(made["input"])
    request["deductions"] = {**request["deductions"],
                             "medical_expenses": {"paid": 300_000, "reimbursed": 0}}
    corrected = svc.correct(tax_a, LG_A, made["id"], {"reason": "医療費控除", "input": request})
    text = text_of(tax_notices.render(corrected["notice"], municipality="東京都千代田区",
                                      labels=LABELS))
    assert "税額変更" in text and "-20,000円" in text and "医療費控除" in text


def test_instalment_rules() -> None:
    # 普通徴収: the first instalment takes the remainder under 1,000 yen.
    assert [e["amount"] for e in instalments(214_500, "ordinary", 2025)] == \
        [55_500, 53_000, 53_000, 53_000]
    # 特別徴収: June takes the remainder under 100 yen; 12 months June to May.
    months = instalments(240_550, "special", 2026)
    assert [e["period"] for e in months][0::11] == ["2026-06", "2027-05"]
    assert months[0]["amount"] == 240_550 - 11 * 20_000 and len(months) == 12
    for total in (0, 1, 99, 1_001, 123_456_789):
        for method in ("ordinary", "special", "pension"):
            assert sum(e["amount"] for e in instalments(total, method, 2026)) == total
            assert all(e["amount"] >= 0 for e in instalments(total, method, 2026))
