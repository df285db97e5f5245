"""The assistant's pure rules: questions, languages, CSV problems, adoption, fusion, metrics."""

from __future__ import annotations

from datetime import date

import pytest

from kiban.assist.model import (
    SHARED,
    Adoption,
    AdoptionMode,
    Faq,
    ReviewState,
    check_question,
    evaluate,
    guess_language,
    parse_csv,
    rrf,
    visible_faqs,
)
from kiban.core.errors import ValidationFailed


@pytest.mark.parametrize(("text", "lang"), [
    ("住民票をコンビニで取れますか", "ja"), ("How do I get a residence certificate?", "en"),
    ("怎么取得住民票?", "zh"), ("쓰레기 수거일은 언제인가요", "ko"),
    ("Làm thế nào để đăng ký bảo hiểm y tế?", "vi"), ("Как получить справку?", None),
    ("كيف أحصل على شهادة؟", None), ("12345", "ja"),
])
def test_language_is_guessed_from_the_script(text: str, lang: str | None) -> None:
    assert guess_language(text) == lang


@pytest.mark.parametrize(("question", "field", "en"), [
    ("", "question", "Please type a question."),
    ("   \n\t ", "question", "Please type a question."),
    ("あ" * 501, "question", "under 500 characters"),
    ("<script>alert(1)</script>住民票", "question", "HTML or scripts"),
    ('<img src=x onerror="alert(1)">', "question", "HTML or scripts"),
    ("Как получить справку о месте жительства?", "lang", "not supported"),
])
def test_bad_questions_are_refused_with_the_field_named(question: str, field: str,
                                                        en: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_question(question)
    assert caught.value.field == field and en in caught.value.en


def test_an_unsupported_requested_language_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_question("住民票", "fr")
    assert caught.value.field == "lang"
    assert check_question("  住民票\x00 ", None) == ("住民票", "ja")


def test_csv_problems_are_reported_by_row_and_field() -> None:
    data = ("question,answer,category,last_reviewed,review_state\n"
            "住民票は?,窓口で請求できます。,証明書,2026-10-01,approved\n"
            ",回答,証明書,2026-10-01,approved\n"
            "質問,<script>x</script>,証明書,2026-13-01,approved\n"
            "質問,回答,証明書,2026-10-01,published\n").encode()
    rows, problems = parse_csv(data)
    assert len(rows) == 4
    assert [(p.row, p.field) for p in problems] == [
        (2, "question"), (3, "answer"), (3, "last_reviewed"), (4, "review_state")]


def test_csv_headers_in_japanese_shift_jis_and_missing_columns() -> None:
    rows, problems = parse_csv("質問,回答,分類,最終確認日\n住民票は?,窓口で。,証明書,2026-10-01\n"
                               .encode("cp932"))
    assert problems == [] and rows[0]["question"] == "住民票は?"
    assert rows[0]["review_state"] == "draft"
    _, missing = parse_csv(b"question,answer\nq,a\n")
    assert {(p.row, p.field) for p in missing} == {(0, "category"), (0, "last_reviewed")}
    _, empty = parse_csv(b"")
    assert empty[0].field == "file"


def test_categories_of_the_municipality_are_enforced() -> None:
    _, problems = parse_csv("question,answer,category,last_reviewed\nq,a,観光,2026-10-01\n"
                            .encode(), categories=["証明書"])
    assert [(p.row, p.field) for p in problems] == [(1, "category")]


def _faq(faq_id: str, lgcode: str, state: ReviewState = ReviewState.APPROVED) -> Faq:
    return Faq(faq_id, lgcode, f"q {faq_id}", f"a {faq_id}", "c", "d", date(2026, 1, 1), state)


def test_adoption_override_and_opt_out() -> None:
    shared = [_faq("STD-1", SHARED), _faq("STD-2", SHARED), _faq("STD-3", SHARED),
              _faq("STD-4", SHARED, ReviewState.DRAFT)]
    own = [_faq("131016-1", "131016"), _faq("131016-2", "131016", ReviewState.DRAFT)]
    adoptions = {"STD-2": Adoption("STD-2", AdoptionMode.OPT_OUT),
                 "STD-3": Adoption("STD-3", AdoptionMode.OVERRIDE, "own text",
                                   date(2026, 9, 1))}
    seen = visible_faqs("131016", own, shared, adoptions, adopt_shared=True)
    assert [f.id for f in seen] == ["131016-1", "STD-1", "STD-3"]
    override = seen[2]
    assert (override.answer, override.lgcode, override.last_reviewed) == (
        "own text", "131016", date(2026, 9, 1))
    only_chosen = visible_faqs("131016", own, shared,
                               {"STD-1": Adoption("STD-1", AdoptionMode.ADOPT)}, False)
    assert [f.id for f in only_chosen] == ["131016-1", "STD-1"]


def test_rank_fusion_and_metrics() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60, weights=[1.0, 1.0])
    assert max(fused, key=lambda d: fused[d]) == 1 and fused[3] > fused[2]
    assert rrf([[1], [2]], weights=[0.0, 1.0])[1] == 0.0
    result = evaluate([("q1", "a"), ("q2", "b"), ("q3", "c")],
                      [["a", "x"], ["x", "b"], ["x", "y"]])
    assert (result.recall_at_1, result.recall_at_5) == (1 / 3, 2 / 3)
    assert result.mrr == pytest.approx((1 + 0.5) / 3)
    assert result.misses == [("q3", "c", ["x", "y"])]
