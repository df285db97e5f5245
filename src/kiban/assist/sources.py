"""Knowledge sources: where the assistant's answerable entries come from.

A source yields (entry, audience) pairs: the entry, and the municipalities that may be answered
with it. Two sources exist:

- `FaqSource`: each municipality's approved FAQs and the shared standard bank as each
  municipality adopted, overrode or opted out of it;
- `OpenDataSource`: each municipality's published facilities and events (kiban.opendata's
  service), answered with the record's own fields.

The procedure catalog (issue 7) plugs in here: a `ProcedureSource` yielding one entry per
procedure (`source="procedure"`, `url` the link that starts it), added to `default_sources`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from kiban.assist import store
from kiban.assist.model import SHARED, Entry, Faq, Settings, visible_faqs
from kiban.opendata.service import OpenData

Audience = frozenset[str]


class KnowledgeSource(Protocol):
    name: str

    def entries(self, conn: Connection, lgcodes: Sequence[str],
                settings: dict[str, Settings]) -> Iterable[tuple[Entry, Audience]]: ...


def faq_entry(f: Faq, source: str) -> Entry:
    return Entry(key=f"faq:{f.lgcode}:{f.id}", lgcode=f.lgcode, source=source, ref=f.id,
                 title=f.question, answer=f.answer, category=f.category,
                 department=f.department, last_reviewed=f.last_reviewed.isoformat(),
                 url=f.url, search_text=f.keywords)


class FaqSource:
    name = "faq"

    def entries(self, conn: Connection, lgcodes: Sequence[str],
                settings: dict[str, Settings]) -> Iterable[tuple[Entry, Audience]]:
        every = store.faqs(conn, [*lgcodes, SHARED], approved_only=True)
        shared = [f for f in every if f.lgcode == SHARED]
        own: dict[str, list[Faq]] = {}
        for f in every:
            if f.lgcode != SHARED:
                own.setdefault(f.lgcode, []).append(f)
        adoptions = store.adoptions(conn)
        audience: dict[str, set[str]] = {}
        found: dict[str, Entry] = {}
        for lgcode in lgcodes:
            s = settings.get(lgcode) or Settings(lgcode)
            for f in visible_faqs(lgcode, own.get(lgcode, []), shared,
                                  adoptions.get(lgcode, {}), s.adopt_shared):
                if s.categories and f.lgcode == lgcode and f.category not in s.categories:
                    continue
                entry = faq_entry(f, "faq" if f.lgcode != SHARED else "shared")
                found[entry.key] = entry
                audience.setdefault(entry.key, set()).add(lgcode)
        return [(found[k], frozenset(a)) for k, a in audience.items()]


# Open datasets that answer questions: the fields shown, in order, with their labels.
_DATASET_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "public_facilities": (("名称", "名称"), ("住所", "住所"), ("利用可能曜日", "利用可能曜日"),
                          ("開始時間", "開始時間"), ("終了時間", "終了時間"),
                          ("利用可能日時特記事項", "特記事項"), ("電話番号", "電話番号")),
    "tourism_facilities": (("名称", "名称"), ("住所", "住所"), ("説明", "説明"),
                           ("利用可能曜日", "利用可能曜日"), ("開始時間", "開始時間"),
                           ("終了時間", "終了時間"), ("料金(基本)", "料金"),
                           ("アクセス方法", "アクセス"), ("連絡先電話番号", "電話番号")),
    "childcare_facilities": (("名称", "名称"), ("住所", "住所"), ("電話番号", "電話番号"),
                             ("定員", "定員"), ("開始時間", "開始時間"), ("終了時間", "終了時間")),
    "events": (("イベント名", "イベント名"), ("開始日", "開始日"), ("終了日", "終了日"),
               ("開始時間", "開始時間"), ("終了時間", "終了時間"), ("場所名称", "場所"),
               ("住所", "住所"), ("説明", "説明"), ("料金", "料金"),
               ("参加申込方法", "申込方法"), ("連絡先", "連絡先")),
}
_TITLE_FIELD = {"events": "イベント名"}
_SEARCHED = ("名称_英語", "イベント名_英語", "名称_通称", "説明_英語", "名称_カナ", "イベント名_カナ")


def record_entry(record: dict[str, Any]) -> Entry | None:
    """An entry answering with a record's own fields, verbatim, one per line."""
    schema = record["schema_name"]
    fields = _DATASET_FIELDS.get(schema)
    title = str(record.get(_TITLE_FIELD.get(schema, "名称")) or "").strip()
    if fields is None or not title:
        return None
    lines = [f"{label}: {record[name]}" for name, label in fields
             if record.get(name) not in (None, "")]
    extra = " ".join(str(record[n]) for n in _SEARCHED if record.get(n))
    ref = f"{record['dataset_id']}#{record['_id']}"
    return Entry(key=f"opendata:{ref}", lgcode=record["lgcode"], source="opendata", ref=ref,
                 title=f"{record.get('title', schema)}: {title}", answer="\n".join(lines),
                 category=str(record.get("title", schema)), url=str(record.get("URL") or ""),
                 search_text=extra)


class OpenDataSource:
    name = "opendata"

    def __init__(self, opendata: OpenData, limit: int = 20_000) -> None:
        self.opendata = opendata
        self.limit = limit

    def entries(self, conn: Connection, lgcodes: Sequence[str],
                settings: dict[str, Settings]) -> Iterable[tuple[Entry, Audience]]:
        del conn, settings  # read through the open-data service's own unit of work
        found = []
        wanted = set(lgcodes)
        for schema in _DATASET_FIELDS:
            for record in self.opendata.find_records(schema=schema, limit=self.limit):
                if record["lgcode"] not in wanted:
                    continue
                entry = record_entry(record)
                if entry is not None:
                    found.append((entry, frozenset({entry.lgcode})))
        return found


def default_sources(opendata: OpenData) -> list[KnowledgeSource]:
    return [FaqSource(), OpenDataSource(opendata)]
