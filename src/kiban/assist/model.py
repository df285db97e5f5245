"""The assistant's pure rules: FAQ entries and their validation, the CSV import format, how a
question is checked and its language guessed, how a municipality's knowledge base is composed
from the shared bank (adopt, override, opt out), and rank fusion.

Standard library and kiban.core only (an import-linter contract keeps it so)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from kiban.core.errors import FieldError, ValidationFailed

SHARED = "000000"  # owner of the shared standard FAQ bank (標準FAQ); no municipality has it
MAX_QUESTION_CHARS = 500
MAX_QUESTION_FIELD = 300
MAX_ANSWER_CHARS = 4000
MAX_IMPORT_ROWS = 5000
MAX_CSV_BYTES = 5 * 1024 * 1024
SUPPORTED_LANGUAGES = ("ja", "en", "zh", "ko", "vi")
DEFAULT_THRESHOLD = 0.55
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)


class ReviewState(StrEnum):
    DRAFT = "draft"  # 下書き: never answered to the public
    APPROVED = "approved"  # 承認済み


class AdoptionMode(StrEnum):
    ADOPT = "adopt"  # take this shared answer even when the bank as a whole is not adopted
    OVERRIDE = "override"  # answer this shared question with the municipality's own text
    OPT_OUT = "opt_out"  # never answer with this shared entry


class Tone(StrEnum):
    POLITE = "polite"  # です・ます
    FRIENDLY = "friendly"


@dataclass(frozen=True)
class Faq:
    id: str
    lgcode: str  # SHARED for the standard bank
    question: str
    answer: str
    category: str
    department: str
    last_reviewed: date
    review_state: ReviewState
    keywords: str = ""  # other wordings of the question, to be found by
    url: str = ""


@dataclass(frozen=True)
class Adoption:
    faq_id: str
    mode: AdoptionMode
    answer: str = ""
    last_reviewed: date | None = None


@dataclass(frozen=True)
class Entry:
    """One answerable item of the knowledge base, whatever its source."""

    key: str  # unique in the index: "faq:<id>" or "<source>:<id>"
    lgcode: str  # the municipality that answers with it (SHARED for the bank)
    source: str  # "faq", "shared", "opendata", later "procedure"
    ref: str  # FAQ id, or dataset id + row
    title: str  # what is matched as the question
    answer: str  # returned verbatim
    category: str = ""
    department: str = ""
    last_reviewed: str = ""  # ISO date
    url: str = ""
    search_text: str = ""  # extra text that is searched but never shown

    @property
    def text(self) -> str:
        return "\n".join(t for t in (self.title, self.search_text, self.answer) if t)


@dataclass
class Settings:
    lgcode: str
    greeting_ja: str = "ご質問をどうぞ。市区町村の手続きや施設についてお答えします。"
    greeting_en: str = "Ask a question about procedures and facilities."
    tone: Tone = Tone.POLITE
    categories: list[str] = field(default_factory=list)  # empty: any category
    adopt_shared: bool = True
    threshold: float = DEFAULT_THRESHOLD
    inquiry_url: str = ""


# -- validation ------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>|javascript:|on[a-z]+\s*=", re.IGNORECASE)


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", _CONTROL.sub("", text)).strip()


def check_faq(values: Mapping[str, object], categories: Sequence[str] = ()) -> list[FieldError]:
    """Every problem of a FAQ's fields, each named."""
    errors: list[FieldError] = []

    def text(name: str) -> str:
        value = values.get(name, "")
        return clean(value) if isinstance(value, str) else ""

    question, answer = text("question"), text("answer")
    if not question:
        errors.append(FieldError("question", "質問を入力してください。", "question is required."))
    elif len(question) > MAX_QUESTION_FIELD:
        errors.append(FieldError("question", f"質問は{MAX_QUESTION_FIELD}文字以内です。",
                                 f"question is longer than {MAX_QUESTION_FIELD} characters."))
    if not answer:
        errors.append(FieldError("answer", "回答を入力してください。", "answer is required."))
    elif len(answer) > MAX_ANSWER_CHARS:
        errors.append(FieldError("answer", f"回答は{MAX_ANSWER_CHARS}文字以内です。",
                                 f"answer is longer than {MAX_ANSWER_CHARS} characters."))
    for name in ("question", "answer", "keywords"):
        if _MARKUP.search(text(name)):
            errors.append(FieldError(name, "HTMLやスクリプトは使えません。",
                                     f"{name} may not contain HTML or scripts."))
    category = text("category")
    if not category:
        errors.append(FieldError("category", "分類を入力してください。", "category is required."))
    elif categories and category not in categories:
        errors.append(FieldError("category", "この団体の分類にありません。",
                                 "category is not one of the municipality's categories."))
    if len(text("department")) > 100:
        errors.append(FieldError("department", "担当課は100文字以内です。",
                                 "department is longer than 100 characters."))
    url = text("url")
    if url and not (url.startswith("https://") or url.startswith("http://") or url.startswith("/")):
        errors.append(FieldError("url", "URLは http(s):// で始めてください。",
                                 "url must start with http:// or https://."))
    reviewed = values.get("last_reviewed", "")
    if not isinstance(reviewed, date):
        try:
            date.fromisoformat(str(reviewed))
        except ValueError:
            errors.append(FieldError("last_reviewed", "最終確認日は YYYY-MM-DD です。",
                                     "last_reviewed must be a date (YYYY-MM-DD)."))
    state = values.get("review_state", ReviewState.DRAFT.value)
    if str(state) not in {s.value for s in ReviewState}:
        errors.append(FieldError("review_state", "状態は draft か approved です。",
                                 "review_state must be draft or approved."))
    return errors


def faq_from(values: Mapping[str, object], faq_id: str, lgcode: str,
             categories: Sequence[str] = ()) -> Faq:
    errors = check_faq(values, categories)
    if errors:
        raise ValidationFailed(errors)
    reviewed = values["last_reviewed"]
    return Faq(id=faq_id, lgcode=lgcode, question=clean(str(values["question"])),
               answer=clean(str(values["answer"])), category=clean(str(values["category"])),
               department=clean(str(values.get("department", ""))),
               last_reviewed=reviewed if isinstance(reviewed, date)
               else date.fromisoformat(str(reviewed)),
               review_state=ReviewState(str(values.get("review_state", "draft"))),
               keywords=clean(str(values.get("keywords", ""))),
               url=clean(str(values.get("url", ""))))


# -- CSV import ------------------------------------------------------------------------

CSV_COLUMNS = ("question", "answer", "category", "department", "last_reviewed", "review_state",
               "keywords", "url")
CSV_REQUIRED = ("question", "answer", "category", "last_reviewed")
# Japanese headers staff's spreadsheets carry are accepted as well.
CSV_ALIASES = {"質問": "question", "回答": "answer", "分類": "category", "担当課": "department",
               "最終確認日": "last_reviewed", "状態": "review_state", "キーワード": "keywords",
               "URL": "url", "id": "id", "ID": "id"}


@dataclass(frozen=True)
class ImportProblem:
    row: int  # 1-based data row (the header is row 0)
    field: str
    ja: str
    en: str


def parse_csv(data: bytes, categories: Sequence[str] = ()
              ) -> tuple[list[dict[str, str]], list[ImportProblem]]:
    """Rows of a FAQ CSV (UTF-8, with or without BOM, or Shift_JIS) and every bad row's
    problems by row and field. Nothing is imported when there is any problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp932")
        except UnicodeDecodeError:
            return [], [ImportProblem(0, "file", "文字コードを判別できません(UTF-8またはShift_JIS)。",
                                      "The file is neither UTF-8 nor Shift_JIS.")]
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], [ImportProblem(0, "file", "ファイルが空です。", "The file is empty.")]
    except csv.Error:
        return [], [ImportProblem(0, "file", "CSVとして読めません。", "Not a CSV file.")]
    names = [CSV_ALIASES.get(h.strip(), h.strip().lower()) for h in header]
    missing = [c for c in CSV_REQUIRED if c not in names]
    if missing:
        return [], [ImportProblem(0, c, f"列 {c} がありません。", f"column {c} is missing.")
                    for c in missing]
    rows: list[dict[str, str]] = []
    problems: list[ImportProblem] = []
    try:
        for number, raw in enumerate(reader, start=1):
            if not any(cell.strip() for cell in raw):
                continue
            if number > MAX_IMPORT_ROWS:
                problems.append(ImportProblem(number, "file", f"{MAX_IMPORT_ROWS}行までです。",
                                              f"at most {MAX_IMPORT_ROWS} rows."))
                break
            if len(raw) != len(names):
                problems.append(ImportProblem(number, "row", "列の数がヘッダと違います。",
                                              "the number of columns differs from the header."))
                continue
            row = {n: v for n, v in zip(names, raw, strict=True) if n in (*CSV_COLUMNS, "id")}
            row.setdefault("review_state", "draft")
            if not row["review_state"]:
                row["review_state"] = "draft"
            for e in check_faq(row, categories):
                problems.append(ImportProblem(number, e.field, e.ja, e.en))
            rows.append(row)
    except csv.Error as exc:
        problems.append(ImportProblem(reader.line_num, "file", "CSVの形式が不正です。",
                                      f"malformed CSV: {exc}"))
    return rows, problems


# -- questions -------------------------------------------------------------------------

def _script_of(ch: str) -> str:
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if ch.isalpha():
        name = unicodedata.name(ch, "")
        if name.startswith("LATIN") or name.startswith("FULLWIDTH LATIN"):
            return "latin"
        return "other"
    return ""


_CHINESE = set("么吗们这怎请谁哪还说给对问办个关吧呢没")
_VIETNAMESE = set("ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")


def guess_language(text: str) -> str | None:
    """ja, en, zh, ko or vi from the scripts used, or None when the text is written in a
    script the assistant does not support (Cyrillic, Arabic, Thai, ...)."""
    counts: dict[str, int] = {}
    for ch in text:
        script = _script_of(ch)
        if script:
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "ja"  # digits and symbols only: treat as Japanese
    letters = sum(counts.values())
    if counts.get("other", 0) * 2 > letters:
        return None
    if counts.get("kana"):
        return "ja"
    if counts.get("hangul"):
        return "ko"
    if counts.get("han"):
        if counts.get("latin", 0) > counts["han"]:
            return "en"
        # Kanji alone is Japanese unless simplified-Chinese function characters show.
        return "zh" if any(ch in _CHINESE for ch in text) else "ja"
    if any(ch in _VIETNAMESE for ch in text.lower()):
        return "vi"
    return "en"


def check_question(text: object, lang: str | None = None) -> tuple[str, str]:
    """The cleaned question and its language, or a ValidationFailed naming `question` or
    `lang`. Questions with markup are refused rather than stripped: what the resident meant
    is unclear, and nothing they typed is ever shown back."""
    if not isinstance(text, str) or not clean(text):
        raise ValidationFailed([FieldError("question", "質問を入力してください。",
                                           "Please type a question.")])
    if len(text) > MAX_QUESTION_CHARS:
        raise ValidationFailed([FieldError(
            "question", f"質問は{MAX_QUESTION_CHARS}文字以内でお願いします。",
            f"Please keep the question under {MAX_QUESTION_CHARS} characters.")])
    question = clean(text)
    if _MARKUP.search(question):
        raise ValidationFailed([FieldError("question", "HTMLやスクリプトを含む質問にはお答えできません。",
                                           "Questions may not contain HTML or scripts.")])
    if lang is not None and lang not in SUPPORTED_LANGUAGES:
        raise ValidationFailed([FieldError(
            "lang", "対応言語は日本語・英語・中国語・韓国語・ベトナム語です。",
            "Supported languages: ja, en, zh, ko, vi.")])
    guessed = guess_language(question)
    if guessed is None:
        raise ValidationFailed([FieldError(
            "lang", "この言語には対応していません。日本語・英語・中国語・韓国語・ベトナム語でどうぞ。",
            "This language is not supported. Please ask in Japanese, English, Chinese, Korean "
            "or Vietnamese.")])
    return question, lang or guessed


# -- personal data in stored questions --------------------------------------------------

# What replaces each kind of personal data in a stored unanswered question.
SCRUBBED_EMAIL = "[メールアドレス]"
SCRUBBED_NUMBER = "[個人番号]"
SCRUBBED_PHONE = "[電話番号]"
_SEP = r"[ \t\u3000\-\u2010-\u2015\u2212\uff0d\u30fc.．]"  # spaces, hyphens, dashes, dots
_EMAIL = re.compile(r"[\w.+\-]+[@＠][\w\-]+(?:[.．][\w\-]+)+")
# 12 digits (個人番号), alone or as 4-4-4 with separators; ASCII or full-width digits.
_DIGITS12 = re.compile(rf"(?<![0-9０-９])[0-9０-９]{{4}}{_SEP}?[0-9０-９]{{4}}{_SEP}?"
                       rf"[0-9０-９]{{4}}(?![0-9０-９])")
# Japanese telephone numbers: 0 or +81 then 9-10 more digits, grouped with separators or
# brackets as people write them (03-1234-5678, 090 1234 5678, (03)1234-5678, +81-90-…).
_D = "[0-9０-９]"
_PHONE = re.compile(rf"(?<!{_D})(?:[+＋]\s?(?:81|８１){_SEP}?[(（]?[0０]?[)）]?|[(（]?[0０])"
                    rf"{_D}{{1,4}}(?:{_SEP}|[)）]){{0,2}}{_D}{{1,4}}{_SEP}?{_D}{{3,4}}(?!{_D})")


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(ch.isdigit() for ch in found)
    # 0 + 9-10 digits at home; 81 + 9-10 digits (and perhaps the 0 in brackets) abroad.
    wanted = range(11, 14) if found[0] in "+＋" else range(10, 12)
    return SCRUBBED_PHONE if digits in wanted else found


def scrub_personal(text: str) -> str:
    """A question as stored for staff: e-mail addresses, 12-digit numbers like a 個人番号
    and telephone numbers replaced by a marker. A hand-off stores what the resident typed, and
    residents type their contact details and numbers into help boxes."""
    text = _EMAIL.sub(SCRUBBED_EMAIL, text)
    text = _PHONE.sub(_phone, text)
    return _DIGITS12.sub(SCRUBBED_NUMBER, text)


# -- composing a municipality's knowledge base ------------------------------------------

def visible_faqs(lgcode: str, own: Iterable[Faq], shared: Iterable[Faq],
                 adoptions: Mapping[str, Adoption], adopt_shared: bool) -> list[Faq]:
    """The approved FAQs a municipality answers with: its own, then the shared bank as it
    adopted it (an override keeps the shared question and id but answers with the
    municipality's text and review date)."""
    result = [f for f in own if f.lgcode == lgcode and f.review_state == ReviewState.APPROVED]
    for f in shared:
        if f.review_state != ReviewState.APPROVED:
            continue
        adoption = adoptions.get(f.id)
        mode = adoption.mode if adoption else None
        if mode == AdoptionMode.OPT_OUT or (mode is None and not adopt_shared):
            continue
        if mode == AdoptionMode.OVERRIDE and adoption is not None:
            result.append(replace(f, lgcode=lgcode, answer=adoption.answer,
                                  last_reviewed=adoption.last_reviewed or f.last_reviewed))
        else:
            result.append(f)
    return result


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K,
        weights: Sequence[float] | None = None) -> dict[int, float]:
    """Weighted reciprocal rank fusion: list i contributes weights[i] / (k + rank)."""
    fused: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights is not None else 1.0
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


# Cosine similarities of multilingual-e5-small between a question and an entry, by the
# question's language: (below this, unrelated; from this, a typical right match). Measured on
# the evaluation set and on off-topic questions (docs/assist.md): Japanese questions meet
# Japanese content at higher similarities than questions in other languages do.
CONFIDENCE_RANGE = {"ja": (0.80, 0.90), "zh": (0.79, 0.87)}
OTHER_RANGE = (0.79, 0.85)
AGREEMENT_BONUS = 0.35


def confidence(cosine: float, lexical_rank: int | None, lang: str = "ja",
               dense_rank: int | None = None) -> float:
    """How sure the match is, 0 to 1: the dense similarity rescaled over the language's range,
    raised when BM25 also ranks the entry in its top three, and more when both rankings put
    it first (two independent methods agreeing)."""
    low, high = CONFIDENCE_RANGE.get(lang, OTHER_RANGE)
    base = min(1.0, max(0.0, (cosine - low) / (high - low)))
    if lexical_rank == 1 and dense_rank == 1:
        base += AGREEMENT_BONUS
    elif lexical_rank is not None and lexical_rank <= 3:
        base += 0.15 / lexical_rank
    return round(min(1.0, base), 3)


@dataclass(frozen=True)
class EvalResult:
    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr: float
    misses: list[tuple[str, str, list[str]]]  # question, expected, top 5 found


def evaluate(cases: Sequence[tuple[str, str]], ranked: Sequence[Sequence[str]]) -> EvalResult:
    """recall@1, recall@5 and mean reciprocal rank (over the top 10) of ranked answer ids."""
    hits1 = hits5 = 0
    rr = 0.0
    misses = []
    for (question, expected), found in zip(cases, ranked, strict=True):
        top = list(found[:10])
        if top[:1] == [expected]:
            hits1 += 1
        if expected in top[:5]:
            hits5 += 1
        else:
            misses.append((question, expected, top[:5]))
        if expected in top:
            rr += 1.0 / (top.index(expected) + 1)
    n = max(len(cases), 1)
    return EvalResult(len(cases), hits1 / n, hits5 / n, rr / n, misses)
