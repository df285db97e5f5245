"""Use cases of the shared assistant (docs/assist.md).

- Anyone asks a municipality's assistant a question; it answers with the best approved entry,
  verbatim, with its source, or, below the municipality's confidence threshold, hands off to
  its inquiry page. Usage is counted per municipality; feedback and unanswered questions kept.
- Staff with `municipality.manage` (団体管理者) edit their FAQs, import them from CSV, choose
  which shared answers they adopt, override or opt out of, and set greeting, tone, categories
  and threshold. Platform administrators keep the shared standard bank.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from kiban.assist import store
from kiban.assist.index import Hit, HybridIndex, embedder, passage_text, sha, tokenizer
from kiban.assist.model import (
    MAX_ANSWER_CHARS,
    SHARED,
    Adoption,
    AdoptionMode,
    Entry,
    EvalResult,
    ImportProblem,
    Settings,
    Tone,
    check_question,
    evaluate,
    faq_from,
    parse_csv,
    scrub_personal,
)
from kiban.assist.sources import KnowledgeSource, default_sources
from kiban.core.clock import Clock, today_jst
from kiban.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from kiban.opendata.service import OpenData
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities

OPENDATA_REFRESH_SECONDS = 300.0  # open data is re-read at most this often
# A question does not query the database for the index's freshness, the municipality or its
# settings more often than this: changes made through this process's service are seen at once,
# another process's (another server worker, the CLI) within this many seconds.
FRESH_SECONDS = 2.0
HANDOFF_TEXT = {
    (Tone.POLITE, "ja"): "申し訳ありません。確かな回答が見つかりませんでした。お問い合わせ窓口をご利用ください。",
    (Tone.FRIENDLY, "ja"): "ごめんなさい、はっきりした答えが見つかりませんでした。問い合わせ窓口へどうぞ。",
    (Tone.POLITE, "en"): "We are sorry: we could not find a reliable answer. Please use the "
                         "municipality's inquiry page.",
    (Tone.FRIENDLY, "en"): "Sorry, no sure answer found. The inquiry page can help.",
    (Tone.POLITE, "zh"): "很抱歉,没有找到可靠的答案。请使用咨询窗口。",
    (Tone.POLITE, "ko"): "죄송합니다. 확실한 답변을 찾지 못했습니다. 문의 창구를 이용해 주십시오.",
    (Tone.POLITE, "vi"): "Xin lỗi, chúng tôi không tìm thấy câu trả lời chắc chắn. Vui lòng "
                         "sử dụng trang liên hệ.",
}
ANSWER_NOTE = {  # said beside a Japanese answer to a question in another language
    "en": "This answer is the municipality's approved text, in Japanese.",
    "zh": "以下是市町村审核过的日文原文回答。",
    "ko": "아래는 지자체가 승인한 일본어 원문 답변입니다.",
    "vi": "Dưới đây là câu trả lời gốc bằng tiếng Nhật đã được chính quyền phê duyệt.",
}


class ImportRejected(ValidationFailed):
    def __init__(self, problems: list[ImportProblem]) -> None:
        super().__init__([FieldError(f"row {p.row}: {p.field}", f"{p.row}行目 {p.field}: {p.ja}",
                                     f"row {p.row}, {p.field}: {p.en}") for p in problems])
        self.problems = problems


@dataclass
class _Built:
    index: HybridIndex
    fingerprint: tuple[Any, ...]
    at: float
    settings: dict[str, Settings]  # as of the build (the fingerprint covers them)
    checked: float  # when the fingerprint was last compared
    generation: int  # Assist._generation when it was compared


class Assist:
    def __init__(self, db: Database, clock: Clock, municipalities: Municipalities,
                 sources: Sequence[KnowledgeSource] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.municipalities = municipalities
        self.sources = list(sources) if sources is not None else default_sources(
            OpenData(db, clock))
        self._built: _Built | None = None
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every write of this service: the index is re-checked
        self._municipalities: dict[str, tuple[float, dict[str, Any]]] = {}

    # -- the index -------------------------------------------------------------------

    def index(self) -> HybridIndex:
        return self._current().index

    def _current(self) -> _Built:
        """The built index and settings; the fingerprint query at most every FRESH_SECONDS
        unless this service wrote meanwhile."""
        built = self._built
        now = time.monotonic()
        if built is not None and built.generation == self._generation and (
                now - built.checked < FRESH_SECONDS) and now - built.at < OPENDATA_REFRESH_SECONDS:
            return built
        generation = self._generation
        with self.db.platform() as conn:
            fingerprint = store.fingerprint(conn)
        if built is not None and built.fingerprint == fingerprint and (
                now - built.at < OPENDATA_REFRESH_SECONDS):
            built.checked, built.generation = now, generation
            return built
        with self._lock:
            built = self._built
            if built is None or built.fingerprint != fingerprint or (
                    time.monotonic() - built.at >= OPENDATA_REFRESH_SECONDS):
                index, settings = self._build()
                built = _Built(index, fingerprint, time.monotonic(), settings, time.monotonic(),
                               generation)
                self._built = built
        return built

    def _changed(self) -> None:
        """After a write of FAQs, adoptions or settings: the next question re-checks the index."""
        self._generation += 1

    def _settings(self, lgcode: str) -> Settings:
        return self._current().settings.get(lgcode) or Settings(lgcode)

    def _build(self) -> tuple[HybridIndex, dict[str, Settings]]:
        lgcodes = [m["lgcode"] for m in self.municipalities.list()]
        entries: list[Entry] = []
        audiences: list[frozenset[str]] = []
        with self.db.platform() as conn:
            settings = store.all_settings(conn)
            for source in self.sources:
                for entry, audience in source.entries(conn, lgcodes, settings):
                    entries.append(entry)
                    audiences.append(audience)
        vectors = self.vectors([passage_text(e) for e in entries])
        tokens = [tokenizer().tokens(e.text) for e in entries]
        members: dict[str, list[int]] = {}
        for doc, audience in enumerate(audiences):
            for lgcode in audience:
                members.setdefault(lgcode, []).append(doc)
        views = {k: np.array(v, dtype=np.int64) for k, v in members.items()}
        return HybridIndex(entries, vectors, tokens, views), settings

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors: the process cache, then the assist_vectors table, then the model
        (whose new vectors are stored for the next process)."""
        model = embedder()
        keys = [sha("passage", t) for t in texts]
        unknown = [k for k in keys if model.cached(k) is None]
        if unknown:
            with self.db.platform() as conn:
                for k, v in store.vectors(conn, unknown).items():
                    model.remember(k, v)
            fresh = [t for t, k in zip(texts, keys, strict=True) if model.cached(k) is None]
            if fresh:
                computed = model.passages(fresh)
                with self.db.platform() as conn:
                    known = store.vectors(conn, [sha("passage", t) for t in fresh])
                    store.save_vectors(conn, {sha("passage", t): v for t, v in zip(
                        fresh, computed, strict=True) if sha("passage", t) not in known})
        return model.passages(texts)

    # -- asking ----------------------------------------------------------------------

    def _municipality(self, lgcode: str) -> dict[str, Any]:
        if not (len(lgcode) == 6 and lgcode.isdigit()) or lgcode == SHARED:
            raise NotFound("団体が見つかりません。", "No such municipality.")
        cached = self._municipalities.get(lgcode)
        if cached is not None and time.monotonic() - cached[0] < FRESH_SECONDS:
            return cached[1]
        found = self.municipalities.get(lgcode)  # NotFound is not cached
        if len(self._municipalities) > 10_000:
            self._municipalities.clear()
        self._municipalities[lgcode] = (time.monotonic(), found)
        return found

    def search(self, lgcode: str, question: str, limit: int = 5, mode: str = "hybrid",
               lang: str | None = None) -> list[Hit]:
        text, language = check_question(question, lang)
        index = self.index()
        vector = embedder().query(text) if mode != "bm25" else None
        return index.search(lgcode, tokenizer().tokens(text), vector, limit, mode, language)

    def ask(self, lgcode: str, question: object, lang: str | None = None,
            count: bool = True) -> dict[str, Any]:
        """The best approved answer, verbatim with its source, or a hand-off. Never any text
        composed from the question: the response does not contain it."""
        muni = self._municipality(lgcode)
        text, language = check_question(question, lang)
        s = self._settings(lgcode)
        hits = self.search(lgcode, text, 5, lang=language)
        best = hits[0] if hits else None
        answered = best is not None and best.confidence >= s.threshold
        today = today_jst(self.clock)
        if count:
            # The tenant's transaction: unanswered questions are under row-level security.
            with self.db.tenant(lgcode) as conn:
                store.count_use(conn, lgcode, today, questions=1,
                                **({"answered": 1} if answered else {"handoffs": 1}))
                if not answered:
                    store.add_unanswered(conn, lgcode, scrub_personal(text), language,
                                         best.entry.ref if best else "",
                                         best.confidence if best else 0.0, self.clock.now())
        handoff = {"url": s.inquiry_url or f"/assist/{lgcode}/inquiry",
                   "message": HANDOFF_TEXT.get((s.tone, language)) or HANDOFF_TEXT[
                       (Tone.POLITE, language if language in ("ja", "en", "zh", "ko", "vi")
                        else "en")]}
        result: dict[str, Any] = {"lgcode": lgcode, "municipality": muni["name"],
                                  "lang": language, "status": "answered" if answered else "handoff"}
        if answered and best is not None:
            result["answer"] = self._answer(best, muni["name"])
            result["note"] = ANSWER_NOTE.get(language, "")
            result["related"] = [self._answer(h, muni["name"]) for h in hits[1:4]
                                 if h.confidence >= s.threshold]
        else:
            result["handoff"] = handoff
        return result

    @staticmethod
    def _answer(hit: Hit, name: str) -> dict[str, Any]:
        e = hit.entry
        return {"ref": e.ref, "source": e.source, "question": e.title, "text": e.answer,
                "category": e.category, "department": e.department,
                "last_reviewed": e.last_reviewed, "url": e.url,
                "municipality": "標準FAQ(共通)" if e.lgcode == SHARED else name,
                "confidence": hit.confidence}

    def public_settings(self, lgcode: str) -> dict[str, Any]:
        muni = self._municipality(lgcode)
        s = self._settings(lgcode)
        return {"lgcode": lgcode, "municipality": muni["name"], "greeting_ja": s.greeting_ja,
                "greeting_en": s.greeting_en, "tone": s.tone.value,
                "inquiry_url": s.inquiry_url or f"/assist/{lgcode}/inquiry",
                "languages": ["ja", "en", "zh", "ko", "vi"]}

    def feedback(self, lgcode: str, ref: object, helpful: object) -> None:
        self._municipality(lgcode)
        if not isinstance(ref, str) or not ref or len(ref) > 80:
            raise ValidationFailed([FieldError("ref", "回答IDが不正です。", "ref is invalid.")])
        if not isinstance(helpful, bool):
            raise ValidationFailed([FieldError("helpful", "true か false です。",
                                               "helpful must be true or false.")])
        known = {e.ref for e in self._view(lgcode)}
        if ref not in known:
            raise ValidationFailed([FieldError("ref", "この団体の回答ではありません。",
                                               "ref is not one of this municipality's answers.")])
        with self.db.tenant(lgcode) as conn:
            store.add_feedback(conn, lgcode, ref, helpful, self.clock.now())
            store.count_use(conn, lgcode, today_jst(self.clock),
                            **({"helpful": 1} if helpful else {"not_helpful": 1}))

    def _view(self, lgcode: str) -> list[Entry]:
        index = self.index()
        return [index.entries[i] for i in index.views.get(lgcode, [])]

    def evaluate(self, cases: Sequence[Mapping[str, str]], mode: str = "hybrid"
                 ) -> EvalResult:
        """Each case: lgcode, question, expected (an entry ref)."""
        ranked = [[h.entry.ref for h in self.search(c["lgcode"], c["question"], 10, mode)]
                  for c in cases]
        return evaluate([(c["question"], c["expected"]) for c in cases], ranked)

    # -- staff: who may do what ------------------------------------------------------

    @staticmethod
    def _manager(actor: StaffMember, lgcode: str) -> None:
        if lgcode == SHARED:
            actor.require(Permission.PLATFORM_MANAGE)
        else:
            actor.require(Permission.MUNICIPALITY_MANAGE, lgcode)

    def faqs(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        self._manager(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            feedback = store.feedback_by_ref(conn, lgcode)
            return [{**asdict(f), "last_reviewed": f.last_reviewed.isoformat(),
                     "helpful": feedback.get(f.id, (0, 0))[0],
                     "not_helpful": feedback.get(f.id, (0, 0))[1]}
                    for f in store.faqs(conn, [lgcode])]

    def shared_bank(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        """The shared bank as this municipality sees it: each entry with its adoption."""
        self._manager(actor, lgcode)
        with self.db.platform() as conn:
            adopted = store.adoptions(conn, lgcode).get(lgcode, {})
            s = store.settings(conn, lgcode)
            rows = []
            for f in store.faqs(conn, [SHARED], approved_only=True):
                a = adopted.get(f.id)
                mode = a.mode.value if a else ("adopt" if s.adopt_shared else "not_adopted")
                rows.append({**asdict(f), "last_reviewed": f.last_reviewed.isoformat(),
                             "mode": mode, "override_answer": a.answer if a else ""})
        return rows

    def _owned(self, actor: StaffMember, faq_id: str) -> tuple[str, Any]:
        with self.db.platform() as conn:
            found = store.faq(conn, faq_id)
        if found is None:
            raise NotFound("FAQが見つかりません。", "No such FAQ.")
        try:
            self._manager(actor, found.lgcode)
        except Forbidden:
            raise NotFound("FAQが見つかりません。", "No such FAQ.") from None
        return found.lgcode, found

    def faq(self, actor: StaffMember, faq_id: str) -> dict[str, Any]:
        _, found = self._owned(actor, faq_id)
        return {**asdict(found), "last_reviewed": found.last_reviewed.isoformat()}

    def _categories(self, lgcode: str) -> list[str]:
        if lgcode == SHARED:
            return []
        with self.db.platform() as conn:
            return store.settings(conn, lgcode).categories

    def _new_id(self, conn: Any, lgcode: str) -> str:
        number = store.next_number(conn, lgcode)
        prefix = "STD" if lgcode == SHARED else lgcode
        while store.faq(conn, f"{prefix}-{number:04d}") is not None:
            number += 1
        return f"{prefix}-{number:04d}"

    def save_faq(self, actor: StaffMember, lgcode: str, values: Mapping[str, Any],
                 faq_id: str | None = None) -> dict[str, Any]:
        if lgcode != SHARED:
            self._municipality(lgcode)
        self._manager(actor, lgcode)
        if faq_id is not None:
            owner, _ = self._owned(actor, faq_id)
            if owner != lgcode:
                raise NotFound("FAQが見つかりません。", "No such FAQ.")
        categories = self._categories(lgcode)
        faq_from(values, "check", lgcode, categories)  # raises with every field's problem
        with self.db.platform() as conn:
            chosen = faq_id or self._new_id(conn, lgcode)
            faq = faq_from(values, chosen, lgcode, categories)
            store.save_faqs(conn, [faq], self.clock.now(), actor.id)
        self._changed()
        return {**asdict(faq), "last_reviewed": faq.last_reviewed.isoformat()}

    def delete_faq(self, actor: StaffMember, faq_id: str) -> None:
        self._owned(actor, faq_id)
        with self.db.platform() as conn:
            store.delete_faq(conn, faq_id)
        self._changed()

    def import_csv(self, actor: StaffMember, lgcode: str, data: bytes) -> dict[str, int]:
        """All rows or none: every bad row is reported by row number and field."""
        if lgcode != SHARED:
            self._municipality(lgcode)
        self._manager(actor, lgcode)
        rows, problems = parse_csv(data, self._categories(lgcode))
        if not rows and not problems:
            problems = [ImportProblem(0, "file", "データ行がありません。", "No data rows.")]
        with self.db.platform() as conn:
            existing = {f.id: f for f in store.faqs(conn, [lgcode])}
            for number, row in enumerate(rows, start=1):
                given = row.get("id", "").strip()
                if given and given not in existing:
                    problems.append(ImportProblem(number, "id", "この団体のFAQ IDではありません。",
                                                  "id is not one of this municipality's FAQs."))
        if problems:
            raise ImportRejected(sorted(problems, key=lambda p: p.row))
        created = updated = 0
        with self.db.platform() as conn:
            items = []
            for row in rows:
                given = row.get("id", "").strip()
                if given:
                    updated += 1
                else:
                    created += 1
                faq = faq_from(row, given or self._new_id(conn, lgcode), lgcode)
                store.save_faqs(conn, [faq], self.clock.now(), actor.id)
                items.append(faq)
        self._changed()
        return {"created": created, "updated": updated}

    def adopt(self, actor: StaffMember, lgcode: str, faq_id: str, mode: str | None,
              answer: str = "", last_reviewed: str | None = None) -> dict[str, Any]:
        """Adopt, override or opt out of one shared answer (`mode` None: follow the
        municipality's adopt_shared setting again)."""
        self._municipality(lgcode)
        self._manager(actor, lgcode)
        with self.db.platform() as conn:
            shared = store.faq(conn, faq_id)
        if shared is None or shared.lgcode != SHARED:
            raise NotFound("標準FAQが見つかりません。", "No such shared FAQ.")
        adoption = None
        if mode:
            if mode not in {m.value for m in AdoptionMode}:
                raise ValidationFailed([FieldError("mode", "adopt・override・opt_out のいずれかです。",
                                                   "mode must be adopt, override or opt_out.")])
            reviewed = today_jst(self.clock)
            if mode == AdoptionMode.OVERRIDE:
                faq_from({"question": shared.question, "answer": answer,
                          "category": shared.category,
                          "last_reviewed": last_reviewed or reviewed.isoformat()},
                         faq_id, lgcode)  # the override's text is checked like any answer
                if len(answer) > MAX_ANSWER_CHARS:
                    raise ValidationFailed([FieldError("answer", "回答が長すぎます。",
                                                       "answer too long.")])
                reviewed = date.fromisoformat(last_reviewed) if last_reviewed else reviewed
            adoption = Adoption(faq_id, AdoptionMode(mode), answer.strip()
                                if mode == AdoptionMode.OVERRIDE else "", reviewed)
        with self.db.platform() as conn:
            store.set_adoption(conn, lgcode, adoption, faq_id, self.clock.now())
        self._changed()
        return {"faq_id": faq_id, "mode": mode or "default"}

    def settings(self, actor: StaffMember, lgcode: str) -> dict[str, Any]:
        self._municipality(lgcode)
        self._manager(actor, lgcode)
        with self.db.platform() as conn:
            s = store.settings(conn, lgcode)
        return {**asdict(s), "tone": s.tone.value}

    def save_settings(self, actor: StaffMember, lgcode: str, values: Mapping[str, Any]
                      ) -> dict[str, Any]:
        self._municipality(lgcode)
        self._manager(actor, lgcode)
        with self.db.platform() as conn:
            current = store.settings(conn, lgcode)
        errors: list[FieldError] = []
        changed: dict[str, Any] = {}
        for name in ("greeting_ja", "greeting_en"):
            if name in values:
                text = str(values[name]).strip()
                if not text or len(text) > 300:
                    errors.append(FieldError(name, "あいさつは1〜300文字です。",
                                             f"{name} must be 1 to 300 characters."))
                changed[name] = text
        if "tone" in values:
            if values["tone"] not in {t.value for t in Tone}:
                errors.append(FieldError("tone", "polite か friendly です。",
                                         "tone must be polite or friendly."))
            else:
                changed["tone"] = Tone(values["tone"])
        if "categories" in values:
            cats = values["categories"]
            if not isinstance(cats, list) or not all(
                    isinstance(c, str) and 0 < len(c.strip()) <= 100 for c in cats) or len(
                    cats) > 100:
                errors.append(FieldError("categories", "分類は100文字以内の文字列の一覧です。",
                                         "categories must be a list of short names."))
            else:
                changed["categories"] = [c.strip() for c in cats]
        if "adopt_shared" in values:
            if not isinstance(values["adopt_shared"], bool):
                errors.append(FieldError("adopt_shared", "true か false です。",
                                         "adopt_shared must be true or false."))
            changed["adopt_shared"] = values["adopt_shared"]
        if "threshold" in values:
            t = values["threshold"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
                errors.append(FieldError("threshold", "しきい値は0から1です。",
                                         "threshold must be between 0 and 1."))
            else:
                changed["threshold"] = float(t)
        if "inquiry_url" in values:
            url = str(values["inquiry_url"]).strip()
            if (url and not url.startswith(("https://", "http://", "/"))) or len(url) > 500:
                errors.append(FieldError("inquiry_url", "URLは http(s):// で始めてください。",
                                         "inquiry_url must start with http:// or https://."))
            changed["inquiry_url"] = url
        unknown = set(values) - {"greeting_ja", "greeting_en", "tone", "categories",
                                 "adopt_shared", "threshold", "inquiry_url"}
        errors += [FieldError(k, "不明な項目です。", "unknown field.") for k in sorted(unknown)]
        if errors:
            raise ValidationFailed(errors)
        updated = replace(current, **changed)
        with self.db.platform() as conn:
            store.save_settings(conn, updated)
        self._changed()
        return {**asdict(updated), "tone": updated.tone.value}

    def usage(self, actor: StaffMember, lgcode: str | None, days: int = 31
              ) -> list[dict[str, Any]]:
        """Questions, answers, hand-offs and feedback per municipality (for sharing the
        cost); a municipality sees its own, the platform every one."""
        if lgcode is None:
            actor.require(Permission.PLATFORM_MANAGE)
        else:
            self._manager(actor, lgcode)
        until = today_jst(self.clock)
        with self.db.platform() as conn:
            return store.usage(conn, lgcode, until - timedelta(days=days - 1), until)

    def unanswered(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        self._manager(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [{**r, "asked_at": r["asked_at"].isoformat()}
                    for r in store.unanswered(conn, lgcode)]

    def resolve(self, actor: StaffMember, lgcode: str, item_id: int) -> None:
        self._manager(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            if not store.resolve_unanswered(conn, lgcode, item_id):
                raise NotFound()

    # -- seeding ---------------------------------------------------------------------

    def seed_demo(self) -> int:
        """The demo content (kiban.assist.demo_content): the shared bank, each demo
        municipality's own FAQs that exist here, their adoption choices and settings."""
        from kiban.assist import demo_content as demo

        present = {m["lgcode"] for m in self.municipalities.list()}
        count = self.seed(demo.as_rows(demo.SHARED_BANK),
                          {k: demo.as_rows(v) for k, v in demo.OWN_FAQS.items() if k in present},
                          {k: v for k, v in demo.DEMO_SETTINGS.items() if k in present})
        with self.db.platform() as conn:
            for lgcode, faq_id, mode, answer in demo.DEMO_ADOPTIONS:
                if lgcode in present:
                    store.set_adoption(conn, lgcode, Adoption(
                        faq_id, AdoptionMode(mode), answer, date.fromisoformat(demo.REVIEWED)),
                        faq_id, self.clock.now())
        self._changed()
        return count

    def seed(self, shared: Sequence[Mapping[str, Any]],
             own: Mapping[str, Sequence[Mapping[str, Any]]],
             settings: Mapping[str, Mapping[str, Any]], by: str = "demo") -> int:
        """Write content as given (ids included); used by the demo, tests and benchmarks."""
        count = 0
        with self.db.platform() as conn:
            for lgcode, rows in [(SHARED, shared), *own.items()]:
                items = [faq_from(r, str(r["id"]), lgcode) for r in rows]
                store.save_faqs(conn, items, self.clock.now(), by)
                count += len(items)
            for lgcode, values in settings.items():
                changes: dict[str, Any] = {
                    k: Tone(v) if k == "tone" else v for k, v in values.items()}
                s = replace(store.settings(conn, lgcode), **changes)
                store.save_settings(conn, s)
        self._changed()
        return count
