"""Privacy use cases: purpose-bound access records, the file register, the anonymised-data
process (call, proposal, screening, processing, contract, delivery) and DP releases.

The registry is reached only through its services: its reports (counts) and its migration
export (the records an anonymised dataset is made from, run by the file's holder)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import date
from typing import Any

import numpy as np

from kiban.core.clock import Clock, today_jst
from kiban.core.errors import (
    Conflict,
    FieldError,
    KibanError,
    NotFound,
    ValidationFailed,
)
from kiban.platform import ledger
from kiban.platform.auth import ROLE_LABELS, Permission, Role, StaffMember
from kiban.platform.db import Database
from kiban.privacy import anonymise, dp, model, store
from kiban.privacy.declarations import FILES, NON_FILES
from kiban.privacy.model import (
    MIN_PERSONS,
    PURPOSES,
    REGISTRY_ITEMS,
    RULE_ELIGIBLE_FILE,
    RULE_PERSONS,
    AccessDecision,
    ProposalIn,
    PurposeRefused,
)
from kiban.registry.migration import RegistryMigration
from kiban.registry.reports import Reports
from kiban.registry.service import Registry
from kiban.tax.assessment import Assessments, require_tax

AUDIT = AccessDecision("audit", False, "")  # the auditing roles' own reads
DP_DATASET = "registry"  # one budget for everything released about the registry's people
TAX_DATASET = "tax"  # DP statistics over the tax assessments (個人住民税課税台帳)
OPENDATA_DATASET = "opendata_population"  # the open dataset 地域・年齢別人口 when made with DP
# Every dataset a budget may be set for: code -> (Japanese, English).
DATASETS: dict[str, tuple[str, str]] = {
    DP_DATASET: ("住民記録(統計)", "Resident registry statistics"),
    TAX_DATASET: ("個人住民税の課税(統計)", "Resident tax statistics"),
    OPENDATA_DATASET: ("オープンデータ 地域・年齢別人口", "Open data: population by area and age"),
}
RULE_BUDGET = "プライバシー予算(データセットごとのε上限)"
TAX_BY = ("town", "income_band")  # the cells of a tax release
TAX_UPPER_MAX = 10_000_000  # the largest clamp of one person's 所得割 (yen)
OPENDATA_GENERATOR = "system:population"  # the open-data generator (no staff member)
AGE_BAND = 5


def new_id() -> str:
    return uuid.uuid4().hex


def refused(error: FieldError, status: int = 422) -> KibanError:
    return KibanError(ja=error.ja, en=error.en, field=error.field, status=status,
                      code="validation" if status == 422 else "forbidden", errors=[error])


def _audit(actor: StaffMember, lgcode: str) -> None:
    actor.require(Permission.LEDGER_AUDIT, lgcode)


# --- the register -----------------------------------------------------------------------------

REGISTER_COLUMNS = (
    ("name", "個人情報ファイルの名称", "法第74条第1項第1号"),
    ("organisation", "事務をつかさどる組織の名称", "同第2号"),
    ("purpose", "利用目的", "同第3号"),
    ("legal_basis", "根拠法令", "同第3号(利用目的の根拠)"),
    ("items", "記録項目", "同第4号"),
    ("scope", "記録範囲", "同第4号"),
    ("collection", "記録情報の収集方法", "同第5号"),
    ("sensitive", "要配慮個人情報が含まれるときはその旨", "同第6号"),
    ("recipients", "記録情報の経常的提供先", "同第7号"),
    ("request_office", "開示・訂正・利用停止請求を受理する組織の名称及び所在地", "同第9号"),
    ("special_procedure", "訂正・利用停止の特別の手続", "同第10号"),
    ("kind", "個人情報ファイルの種別", "施行令第21条"),
    ("anonymisation_open", "行政機関等匿名加工情報の提案募集の対象", "法第110条、施行令第21条"),
    ("proposal_office", "提案を受ける組織の名称及び所在地", "施行令第21条"),
)


def register_entries(tables: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The 個人情報ファイル簿, generated from the tables (recorded items) and the declarations
    (everything that is a decision). A table no declaration names is not listed (the
    register test fails on it, so it never ships)."""
    tables = store.personal_tables() if tables is None else tables
    entries = []
    for f in FILES:
        items: list[str] = []
        for table in f.tables:
            for column in tables.get(table, []):
                label = f.labels.get(column)
                if label and label not in items:
                    items.append(label)
        items.extend(i for i in f.nested_items if i not in items)
        entries.append({
            "file_id": f.file_id, "name": f.name, "organisation": f.organisation,
            "purpose": f.purpose, "legal_basis": f.legal_basis, "items": items,
            "scope": f.scope, "collection": f.collection,
            "sensitive": f.sensitive or "含まない", "recipients": list(f.recipients) or ["なし"],
            "request_office": "各団体の個人情報保護担当窓口",
            "special_procedure": "なし", "kind": f.kind,
            "anonymisation_open": f.anonymisation_open,
            "proposal_office": "個人情報保護担当窓口" if f.anonymisation_open else "",
            "tables": list(f.tables),
        })
    return entries


def undeclared(tables: dict[str, list[str]]) -> list[str]:
    """Personal-data tables in no declaration, and columns of declared tables that are
    neither a recorded item nor technical."""
    declared = {t: f for f in FILES for t in f.tables}
    exempt = {n.table for n in NON_FILES}
    problems = []
    for table, columns in sorted(tables.items()):
        if table in exempt:
            continue
        f = declared.get(table)
        if f is None:
            problems.append(f"table {table} is personal data but in no FileDeclaration")
            continue
        for column in columns:
            if column not in f.labels and column not in f.technical:
                problems.append(f"column {table}.{column} is neither a 記録項目 nor technical")
    return problems


def register_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([label for _, label, _ in REGISTER_COLUMNS])
    for e in entries:
        writer.writerow(["、".join(v) if isinstance(v := e[key], list) else
                         ("対象" if v is True else "対象外" if v is False else v)
                         for key, _, _ in REGISTER_COLUMNS])
    return out.getvalue()


# --- microdata for anonymisation ---------------------------------------------------------------

def _age(birth: str, on: date) -> int:
    b = date.fromisoformat(birth)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def registry_rows(jsonl: str, on: date) -> list[dict[str, Any]]:
    """The items a proposal may ask for, per active resident, from the migration export."""
    households: dict[str, dict[str, Any]] = {}
    residents: list[dict[str, Any]] = []
    for line in jsonl.splitlines():
        record = json.loads(line)
        if record.get("type") == "household":
            households[record["id"]] = record
        elif record.get("type") == "resident" and record["status"] == "active":
            residents.append(record)
    sizes: dict[str, int] = {}
    for r in residents:
        sizes[r["household_id"]] = sizes.get(r["household_id"], 0) + 1
    rows = []
    for r in residents:
        foreign = r.get("foreign") or {}
        hh = households.get(r["household_id"], {})
        rows.append({
            "age": _age(r["birth_date"], on), "sex": r["sex"],
            "town_code": (hh.get("address") or {}).get("town_code", ""),
            "relationship": r["relationship"], "household_size": sizes[r["household_id"]],
            "resident_years": max(0, _age(r["resident_since"], on)),
            "foreign": "1" if foreign else "0",
            "nationality": foreign.get("nationality", "日本") if foreign else "日本",
            "residence_status": foreign.get("residence_status", "") if foreign else "",
        })
    return rows


NUMERIC_WIDTHS = {"age": (5, 10, 20), "household_size": (2, 4), "resident_years": (5, 10, 20)}


def hierarchy(name: str, values: list[Any]) -> anonymise.Hierarchy:
    if name in NUMERIC_WIDTHS:
        return anonymise.numeric(name, values, NUMERIC_WIDTHS[name])
    if name == "town_code":  # 町字 code: its first 4 digits name the 大字
        return anonymise.prefixes(name, values, (4,))
    return anonymise.flat(name, values)


def anonymise_rows(rows: list[dict[str, Any]], quasi: list[str], sensitive: str | None,
                   k: int, l: int) -> tuple[anonymise.Result, list[str], list[list[str]]]:  # noqa: E741
    hs = [hierarchy(q, [r[q] for r in rows]) for q in quasi]
    sens = [r[sensitive] for r in rows] if sensitive else None
    result = anonymise.Anonymiser(hs, sens).run(k, l)
    header = [*quasi, *([sensitive] if sensitive else [])]
    columns = [result.columns[q] for q in quasi]
    if sensitive:
        columns.append(np.asarray(sens, dtype=object)[result.kept])
    # Records in a random order: the source order (by household) would link rows.
    order = np.random.default_rng().permutation(int(result.kept.sum()))
    body = [[str(c[i]) for c in columns] for i in order]
    return result, header, body


class Privacy:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def today(self) -> date:
        return today_jst(self.clock)

    # --- purpose-bound access ------------------------------------------------------------------

    def authorise(self, actor: StaffMember, purpose: str, reason: str) -> AccessDecision:
        try:
            return model.decide_access({r.value for r in actor.roles}, purpose, reason)
        except PurposeRefused as e:
            raise refused(e.error, status=403) from None

    def record(self, actor: StaffMember, lgcode: str, decision: AccessDecision,
               resident_ids: list[str], fields: list[str], channel: str,
               detail: dict[str, Any] | None = None) -> int:
        """One row per resident read (identifiers only; no values), in one INSERT."""
        at = self.clock.now()
        roles = ",".join(sorted(r.value for r in actor.roles))
        rows = [{"id": new_id(), "at": at, "staff_id": actor.id,
                 "department": actor.department, "roles": roles, "resident_id": rid,
                 "fields": fields, "purpose": decision.purpose, "channel": channel[:200],
                 "reason": decision.reason, "flagged": decision.flagged, "detail": detail}
                for rid in dict.fromkeys(resident_ids)]
        with self.db.tenant(lgcode) as conn:
            store.record_access(conn, lgcode, rows)
        return len(rows)

    def record_read(self, actor: StaffMember, lgcode: str, purpose: str,
                    resident_ids: list[str], fields: list[str], channel: str) -> None:
        """A page's read within the reader's purposes (pages state no other purpose)."""
        self.record(actor, lgcode, self.authorise(actor, purpose, ""), resident_ids, fields,
                    channel)

    @staticmethod
    def _access_view(r: dict[str, Any], *, for_resident: bool) -> dict[str, Any]:
        roles = [ROLE_LABELS.get(Role(x), x) if x in Role._value2member_map_ else x
                 for x in r["roles"].split(",") if x]
        view = {"at": r["at"].isoformat(), "department": r["department"], "roles": roles,
                "purpose": r["purpose"], "purpose_ja": PURPOSES.get(r["purpose"], ("", ""))[0],
                "fields": r["fields"], "channel": r["channel"], "flagged": r["flagged"],
                "reason": r["reason"]}
        if not for_resident:
            view.update(id=r["id"], staff_id=r["staff_id"], resident_id=r["resident_id"],
                        detail=r["detail"])
        return view

    def accesses_of(self, actor: StaffMember, lgcode: str, resident_id: str,
                    page: int = 1, per_page: int = 100, channel: str = "api") -> dict[str, Any]:
        """What the resident sees: who (department and role, never a name), when, why. The
        read itself is recorded (the auditor reads the resident's access history)."""
        _audit(actor, lgcode)
        view = self.accesses_for_resident(lgcode, resident_id, page, per_page)
        self.record(actor, lgcode, AUDIT, [resident_id], ["access_records"], channel)
        return view

    def accesses_for_resident(self, lgcode: str, resident_id: str, page: int = 1,
                              per_page: int = 100) -> dict[str, Any]:
        """The same view for the resident themself: for the resident portal, once its session
        names the resident (the caller has authenticated them; no staff member is involved)."""
        if not 1 <= per_page <= 500 or page < 1:
            raise ValidationFailed([FieldError("page", "ページ指定が不正です。",
                                               "page >= 1, per_page 1..500.")])
        with self.db.tenant(lgcode) as conn:
            rows = store.accesses(conn, lgcode, resident_id=resident_id, limit=per_page,
                                  offset=(page - 1) * per_page)
        return {"resident_id": resident_id, "page": page,
                "items": [self._access_view(r, for_resident=True) for r in rows]}

    def flagged(self, actor: StaffMember, lgcode: str, limit: int = 200,
                channel: str = "api") -> list[dict[str, Any]]:
        _audit(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            rows = store.accesses(conn, lgcode, flagged=True, limit=limit)
        self.record(actor, lgcode, AUDIT, [r["resident_id"] for r in rows], ["access_records"],
                    channel)
        return [self._access_view(r, for_resident=False) for r in rows]

    # --- calls and proposals -------------------------------------------------------------------

    def open_call(self, actor: StaffMember, lgcode: str, title: str, opens_on: date,
                  closes_on: date, files: list[str]) -> dict[str, Any]:
        _audit(actor, lgcode)
        eligible = {f.file_id for f in FILES if f.anonymisation_open}
        errors = model.screen_call(opens_on, closes_on, files, eligible)
        if not title.strip():
            errors.append(FieldError("title", "件名を入力してください。", "Give a title."))
        if errors:
            raise ValidationFailed(errors)
        call_id, at = new_id(), self.clock.now()
        row: dict[str, Any] = {"id": call_id, "lgcode": lgcode, "title": title.strip(),
                               "opens_on": opens_on, "closes_on": closes_on, "files": files,
                               "created_by": actor.id, "created_at": at}
        with self.db.tenant(lgcode) as conn:
            store.insert_call(conn, row)
            ledger.append(conn, lgcode, "privacy.call_opened", call_id,
                          {"opens_on": opens_on.isoformat(), "closes_on": closes_on.isoformat(),
                           "files": files}, actor.id, at)
        return self._call_view(row)

    @staticmethod
    def _call_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "title": row["title"], "opens_on": row["opens_on"].isoformat(),
                "closes_on": row["closes_on"].isoformat(), "files": row["files"]}

    def calls(self, lgcode: str) -> list[dict[str, Any]]:
        """Public: the municipality's calls for proposals."""
        with self.db.tenant(lgcode) as conn:
            return [self._call_view(r) for r in store.calls(conn, lgcode)]

    def submit(self, lgcode: str, call_id: str, proposer: dict[str, str], file_id: str,
               p: ProposalIn) -> dict[str, Any]:
        """A data user's proposal (public). Rules that need no data are applied at once: a
        refusal names each rule and stores nothing."""
        errors = model.screen_items(p)
        for name in ("organisation", "contact_email"):
            if not str(proposer.get(name, "")).strip():
                errors.append(FieldError(f"proposer.{name}", "提案者の情報が不足しています。",
                                         f"proposer.{name} is required."))
        with self.db.tenant(lgcode) as conn:
            call = store.get_call(conn, lgcode, call_id)
            if call is None:
                raise NotFound("募集が見つかりません。", "Call for proposals not found.")
            today = self.today()
            if not call["opens_on"] <= today <= call["closes_on"]:
                errors.append(FieldError("call_id", "募集期間外です(法第111条・提案の募集)。",
                                         "The call is not open today (法第111条)."))
            if file_id not in call["files"]:
                errors.append(FieldError("file_id", f"募集の対象ファイルではありません({RULE_ELIGIBLE_FILE})。",
                                         f"{file_id!r} is not in this call ({RULE_ELIGIBLE_FILE})."))
            if errors:
                raise ValidationFailed(errors)
            at, pid = self.clock.now(), new_id()
            row: dict[str, Any] = {"id": pid, "lgcode": lgcode, "call_id": call_id, "file_id": file_id,
                   "proposer": proposer, "purpose": p.purpose.strip(), "items": p.items,
                   "sensitive": p.sensitive, "k": p.k, "l": p.l, "use_from": p.use_from,
                   "use_to": p.use_to, "status": "submitted", "refusals": [],
                   "submitted_at": at, "updated_at": at}
            store.insert_proposal(conn, row)
            ledger.append(conn, lgcode, "privacy.proposal_submitted", pid,
                          {"file_id": file_id, "items": p.items, "k": p.k, "l": p.l},
                          "public", at)
        return self._proposal_view(row)

    @staticmethod
    def _proposal_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "call_id": row["call_id"], "file_id": row["file_id"],
                "proposer": {"organisation": row["proposer"].get("organisation", "")},
                "purpose": row["purpose"], "items": row["items"], "sensitive": row["sensitive"],
                "k": row["k"], "l": row["l"], "use_from": row["use_from"].isoformat(),
                "use_to": row["use_to"].isoformat(), "status": row["status"],
                "refusals": row["refusals"], "screening": row.get("screening"),
                "processing": row.get("processing"), "contract": row.get("contract"),
                "dataset_sha256": row.get("dataset_sha256")}

    def _load(self, conn: Any, lgcode: str, pid: str, *, expect: str) -> dict[str, Any]:
        row = store.get_proposal(conn, lgcode, pid, lock=True)
        if row is None:
            raise NotFound("提案が見つかりません。", "Proposal not found.")
        if row["status"] != expect:
            raise Conflict(f"この提案は「{row['status']}」の状態です。",
                           f"The proposal is {row['status']}, not {expect}.", field="status")
        return row

    def proposal(self, actor: StaffMember, lgcode: str, pid: str) -> dict[str, Any]:
        _audit(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            row = store.get_proposal(conn, lgcode, pid)
        if row is None:
            raise NotFound("提案が見つかりません。", "Proposal not found.")
        return self._proposal_view(row)

    def proposals(self, actor: StaffMember, lgcode: str, statuses: list[str] | None = None
                  ) -> list[dict[str, Any]]:
        _audit(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [self._proposal_view(r) for r in store.list_proposals(conn, lgcode, statuses)]

    def screen(self, actor: StaffMember, lgcode: str, pid: str) -> dict[str, Any]:
        """The privacy officer's screening (法第112条): the file still open to proposals and
        at least MIN_PERSONS persons in it. A refusal is stored with the rules it names."""
        _audit(actor, lgcode)
        persons = Reports(self.db, self.clock).population(actor, lgcode)["totals"]["total"]
        eligible = {f.file_id for f in FILES if f.anonymisation_open}
        with self.db.tenant(lgcode) as conn:
            row = self._load(conn, lgcode, pid, expect="submitted")
            refusals = []
            if row["file_id"] not in eligible:
                refusals.append({"field": "file_id", "rule": RULE_ELIGIBLE_FILE,
                                 "en": "The file is not open to proposals."})
            if persons < MIN_PERSONS:
                refusals.append({"field": "file_id", "rule": RULE_PERSONS,
                                 "en": f"The file holds {persons} persons, fewer than "
                                       f"{MIN_PERSONS}."})
            status = "refused" if refusals else "approved"
            at = self.clock.now()
            screening = {"persons": persons, "by": actor.id, "at": at.isoformat()}
            store.update_proposal(conn, lgcode, pid, status=status, refusals=refusals,
                                  screening=screening, updated_at=at)
            ledger.append(conn, lgcode, "privacy.proposal_screened", pid,
                          {"status": status, "rules": [r["rule"] for r in refusals]},
                          actor.id, at)
            row.update(status=status, refusals=refusals, screening=screening)
        return self._proposal_view(row)

    def process(self, actor: StaffMember, lgcode: str, pid: str) -> dict[str, Any]:
        """The file's holder makes the anonymised data (規則第62条) from the registry's
        export; the processing record (levels, coding, loss, risk) is kept and ledgered."""
        actor.require(Permission.REGISTRY_EXPORT, lgcode)
        with self.db.tenant(lgcode) as conn:
            row = self._load(conn, lgcode, pid, expect="approved")
        out = io.StringIO()
        RegistryMigration(self.db, self.clock).export(actor, lgcode, out)
        rows = registry_rows(out.getvalue(), self.today())
        quasi = [i for i in row["items"]
                 if REGISTRY_ITEMS[i].kind == "quasi" and i != row["sensitive"]]
        sensitive = row["sensitive"] or next(
            (i for i in row["items"] if REGISTRY_ITEMS[i].kind == "sensitive"), None)
        try:
            result, header, body = anonymise_rows(rows, quasi, sensitive, row["k"],
                                                  row["l"] if sensitive else 1)
        except anonymise.Infeasible:
            raise refused(FieldError("k", "このk・lでは提供できるレコードがありません。",
                                     "No record can be released at this k and l."),
                          status=409) from None
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([REGISTRY_ITEMS[h].label for h in header])
        writer.writerows(body)
        data = text.getvalue()
        sha = hashlib.sha256(data.encode()).hexdigest()
        processing = {
            "rule": "個人情報保護法施行規則第62条",
            "removed": ["氏名", "フリガナ", "生年月日", "住所(番地・方書)", "本籍", "住民票コード",
                        "個人番号", "在留カード等の番号", "住民・世帯のID"],
            "levels": result.levels, "coded": result.coded, "loss": result.loss,
            "risk": result.risk, "k": row["k"], "l": row["l"] if sensitive else 1,
            "sensitive": sensitive, "records": int(result.kept.sum()), "source": len(rows),
            "by": actor.id, "at": self.clock.now().isoformat()}
        with self.db.tenant(lgcode) as conn:
            self._load(conn, lgcode, pid, expect="approved")
            store.update_proposal(conn, lgcode, pid, status="processed", processing=processing,
                                  dataset_csv=data, dataset_sha256=sha,
                                  updated_at=self.clock.now())
            ledger.append(conn, lgcode, "privacy.anonymised", pid,
                          {"sha256": sha, "levels": result.levels, "loss": result.loss,
                           "k": processing["k"], "l": processing["l"]},
                          actor.id, self.clock.now())
        return self.proposal_for_holder(lgcode, pid)

    def proposal_for_holder(self, lgcode: str, pid: str) -> dict[str, Any]:
        with self.db.tenant(lgcode) as conn:
            row = store.get_proposal(conn, lgcode, pid)
        assert row is not None
        return self._proposal_view(row)

    def contract(self, actor: StaffMember, lgcode: str, pid: str, contract_no: str,
                 signed_on: date, fee_yen: int) -> dict[str, Any]:
        """The 利用契約 (法第115条) after processing: number, date, fee."""
        _audit(actor, lgcode)
        errors = []
        if not contract_no.strip():
            errors.append(FieldError("contract_no", "契約番号を入力してください。",
                                     "Give the contract number."))
        if fee_yen < 0:
            errors.append(FieldError("fee_yen", "手数料が不正です。", "The fee cannot be negative."))
        if errors:
            raise ValidationFailed(errors)
        at = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            row = self._load(conn, lgcode, pid, expect="processed")
            contract = {"contract_no": contract_no.strip(), "signed_on": signed_on.isoformat(),
                        "fee_yen": fee_yen, "use_from": row["use_from"].isoformat(),
                        "use_to": row["use_to"].isoformat(), "by": actor.id}
            store.update_proposal(conn, lgcode, pid, status="contracted", contract=contract,
                                  updated_at=at)
            ledger.append(conn, lgcode, "privacy.contracted", pid, contract, actor.id, at)
            row.update(status="contracted", contract=contract)
        return self._proposal_view(row)

    def deliver(self, actor: StaffMember, lgcode: str, pid: str) -> tuple[str, str]:
        """The dataset (CSV) to the contracted data user; the delivery is ledgered."""
        _audit(actor, lgcode)
        at = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            row = store.get_proposal(conn, lgcode, pid, lock=True)
            if row is None:
                raise NotFound("提案が見つかりません。", "Proposal not found.")
            if row["status"] not in ("contracted", "delivered"):
                raise Conflict("契約の締結前は提供できません(法第115条)。",
                               "No delivery before the contract (法第115条).", field="status")
            store.update_proposal(conn, lgcode, pid, status="delivered", updated_at=at)
            ledger.append(conn, lgcode, "privacy.delivered", pid,
                          {"sha256": row["dataset_sha256"]}, actor.id, at)
        return row["dataset_csv"], row["dataset_sha256"]

    # --- differentially private statistics ----------------------------------------------------

    def set_budget(self, actor: StaffMember, lgcode: str, epsilon_total: float,
                   dataset: str = DP_DATASET) -> dict[str, Any]:
        _audit(actor, lgcode)
        if dataset not in DATASETS:
            raise ValidationFailed([FieldError(
                "dataset", f"データセット「{dataset}」はありません。",
                f"Unknown dataset {dataset!r}: one of {', '.join(DATASETS)}.")])
        if not 0 < epsilon_total <= 10:
            raise ValidationFailed([FieldError("epsilon_total", "εの上限は0より大きく10以下です。",
                                               "epsilon_total must be in (0, 10].")])
        with self.db.tenant(lgcode) as conn:
            current = store.get_budget(conn, lgcode, dataset, lock=True)
            if current is not None and epsilon_total < current["epsilon_spent"]:
                raise ValidationFailed([FieldError(
                    "epsilon_total", f"使用済みのεを下回る上限は設定できません({RULE_BUDGET})。",
                    f"The budget cannot go below what is spent ({RULE_BUDGET}).")])
            store.set_budget(conn, lgcode, dataset, epsilon_total, self.clock.now())
            ledger.append(conn, lgcode, "privacy.budget_set", dataset,
                          {"epsilon_total": epsilon_total}, actor.id, self.clock.now())
            budget = store.get_budget(conn, lgcode, dataset)
        assert budget is not None
        return self._budget_view(budget)

    @staticmethod
    def _budget_view(b: dict[str, Any]) -> dict[str, Any]:
        label = DATASETS.get(b["dataset"], (b["dataset"], b["dataset"]))
        return {"dataset": b["dataset"], "label_ja": label[0], "label_en": label[1],
                "epsilon_total": b["epsilon_total"],
                "epsilon_spent": round(b["epsilon_spent"], 9),
                "epsilon_left": round(b["epsilon_total"] - b["epsilon_spent"], 9)}

    def budgets(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        _audit(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [self._budget_view(b) for b in store.all_budgets(conn, lgcode)]

    def _spend(self, conn: Any, lgcode: str, epsilon: float, dataset: str,
               check_only: bool = False) -> None:
        """Checks and spends the budget under its row lock, in the release's transaction
        (`check_only`: refuses as a release would, spends nothing: before reading data)."""
        if not 0 < epsilon <= 10:
            raise ValidationFailed([FieldError("epsilon", "εは0より大きく10以下です。",
                                               "epsilon must be in (0, 10].")])
        budget = store.get_budget(conn, lgcode, dataset, lock=True)
        if budget is None:
            raise refused(FieldError("epsilon", f"予算が設定されていません({RULE_BUDGET})。",
                                     f"No budget is set for {dataset!r} ({RULE_BUDGET})."), 409)
        left = budget["epsilon_total"] - budget["epsilon_spent"]
        if epsilon > left + 1e-12:
            raise refused(FieldError(
                "epsilon", f"プライバシー予算を超えます(残り ε={left:.4g})({RULE_BUDGET})。",
                f"The release would exceed the privacy budget: {left:.4g} left ({RULE_BUDGET})."),
                409)
        if not check_only:
            store.spend(conn, lgcode, dataset, epsilon, self.clock.now())

    def release_population(self, actor: StaffMember, lgcode: str, epsilon: float
                           ) -> dict[str, Any]:
        """地域・年齢別人口 with DP noise: counts by 町字, sex and 5-year band. Each person is in
        one cell, so the whole table costs ε."""
        population = Reports(self.db, self.clock).population(actor, lgcode)
        cells: list[tuple[str, str, str]] = []
        counts: list[int] = []
        for town in population["towns"]:
            for band in town["age_bands"]:
                for sex, key in (("1", "male"), ("2", "female")):
                    cells.append((town["town_code"], sex, band["band"]))
                    counts.append(int(band[key]))
        with self.db.tenant(lgcode) as conn:
            self._spend(conn, lgcode, epsilon, DP_DATASET)
            noisy, certified = dp.noisy_counts(counts, epsilon)
            result = {"as_of": population["as_of"], "epsilon": certified,
                      "noise_stddev": dp.count_stddev(epsilon),
                      "cells": [{"town_code": t, "sex": s, "age_band": b, "count": c}
                                for (t, s, b), c in zip(cells, noisy, strict=True)]}
            self._release(conn, lgcode, actor.id, {"kind": "population"}, epsilon, result)
        return result

    def release_sum(self, actor: StaffMember, lgcode: str, epsilon: float, upper: int = 100
                    ) -> dict[str, Any]:
        """Sum of residents' ages per 町字 (each age clamped to [0, upper]), from the records
        (the file holder runs it)."""
        actor.require(Permission.REGISTRY_EXPORT, lgcode)
        if not 1 <= upper <= 150:
            raise ValidationFailed([FieldError("upper", "上限は1〜150です。", "upper is 1..150.")])
        out = io.StringIO()
        RegistryMigration(self.db, self.clock).export(actor, lgcode, out)
        rows = registry_rows(out.getvalue(), self.today())
        sums: dict[str, float] = {}
        for r in rows:
            sums[r["town_code"]] = sums.get(r["town_code"], 0.0) + min(max(r["age"], 0), upper)
        towns = sorted(sums)
        with self.db.tenant(lgcode) as conn:
            self._spend(conn, lgcode, epsilon, DP_DATASET)
            noisy, certified = dp.noisy_sums([sums[t] for t in towns], float(upper), epsilon)
            result = {"epsilon": certified, "upper": upper,
                      "cells": [{"town_code": t, "age_sum": round(v, 1)}
                                for t, v in zip(towns, noisy, strict=True)]}
            self._release(conn, lgcode, actor.id, {"kind": "age_sum", "upper": upper}, epsilon,
                          result)
        return result

    def _release(self, conn: Any, lgcode: str, actor_id: str, query: dict[str, Any],
                 epsilon: float, result: dict[str, Any], dataset: str = DP_DATASET) -> None:
        at = self.clock.now()
        rid = new_id()
        store.insert_release(conn, {"id": rid, "lgcode": lgcode, "dataset": dataset,
                                    "query": query, "epsilon": epsilon, "result": result,
                                    "released_by": actor_id, "released_at": at})
        ledger.append(conn, lgcode, "privacy.dp_release", rid,
                      {"dataset": dataset, "query": query, "epsilon": epsilon}, actor_id, at)
        result["release_id"] = rid

    def release_tax(self, actor: StaffMember, lgcode: str, tax: Assessments, fiscal_year: int,
                    by: str, epsilon: float, upper: int = 500_000) -> dict[str, Any]:
        """Count of taxpayers and sum of 所得割 (市町村民税 + 道府県民税, each person's clamped to
        [0, upper] yen) per 町字 (on 1 January) or per income band, over the year's stored
        assessments, with OpenDP noise; spends ε from the `tax` budget: ε/2 for the counts,
        ε/2 for the sums (sequential composition; each taxpayer is in one cell, so each table
        costs its ε by parallel composition). Run by the file's holder (税務担当): the tax
        service answers only aggregates, and the read is recorded as a bulk access."""
        if by not in TAX_BY:
            raise ValidationFailed([FieldError("by", "集計区分は town か income_band です。",
                                               "by is town or income_band.")])
        if not 1 <= upper <= TAX_UPPER_MAX:
            raise ValidationFailed([FieldError(
                "upper", f"上限は1〜{TAX_UPPER_MAX:,}円です。", f"upper is 1..{TAX_UPPER_MAX} yen.")])
        require_tax(actor, lgcode)
        with self.db.tenant(lgcode) as conn:  # refused before the read: it reads nothing
            self._spend(conn, lgcode, epsilon, TAX_DATASET, check_only=True)
        stats = tax.statistics_cells(actor, lgcode, fiscal_year, by, upper)
        cells = stats["cells"]
        with self.db.tenant(lgcode) as conn:
            self._spend(conn, lgcode, epsilon, TAX_DATASET)
            counts, eps_counts = dp.noisy_counts([int(c["count"]) for c in cells], epsilon / 2)
            sums, eps_sums = dp.noisy_sums([float(c["levy_sum"]) for c in cells], float(upper),
                                           epsilon / 2)
            query = {"kind": "tax", "fiscal_year": fiscal_year, "by": by, "upper": upper}
            result = {"fiscal_year": fiscal_year, "by": by, "upper": upper,
                      "epsilon": eps_counts + eps_sums,
                      "count_noise_stddev": dp.count_stddev(epsilon / 2),
                      "sum_noise_stddev": 2 ** 0.5 * upper / (epsilon / 2),
                      "cells": [{"key": c["key"], "label": c["label"], "taxpayers": n,
                                 "income_levy_sum": round(v)}
                                for c, n, v in zip(cells, counts, sums, strict=True)]}
            self._release(conn, lgcode, actor.id, query, epsilon, result, TAX_DATASET)
        decision = self.authorise(actor, "tax_assessment", "")
        self.record(actor, lgcode, decision, ["*"], ["income_levy", "total_income", "town"],
                    "api:POST /privacy/releases/tax",
                    {"kind": "dp_statistics", "fiscal_year": fiscal_year, "by": by,
                     "count": stats["persons"]})
        return result

    def population_for_open_data(self, lgcode: str, epsilon: float) -> dict[str, Any]:
        """地域・年齢別人口 for the open dataset with DP noise (the open-data generator's call,
        as the system): every 町字 of the master (and any other 町字 the registry counts) ×
        5-year band (100+ last) × sex, zeros included, so which cells exist says nothing;
        discrete Laplace noise of scale 1/ε from OpenDP; ε spent from the dedicated
        `opendata_population` budget. Returns counts as Registry.population_by_town does
        ((town, band, sex, n), n noisy and possibly negative), with the release id."""
        counted = Registry(self.db, self.clock).population_by_town(lgcode)
        exact = {(t, b, "1" if s == "1" else "2"): 0 for t, b, s, _ in counted["counts"]}
        for t, b, s, n in counted["counts"]:
            exact[(t, b, "1" if s == "1" else "2")] += int(n)
        towns = sorted(set(counted["towns"]) | {t for t, _, _ in exact})
        keys = [(t, b, s) for t in towns for b in range(0, 101, AGE_BAND) for s in ("1", "2")]
        with self.db.tenant(lgcode) as conn:
            self._spend(conn, lgcode, epsilon, OPENDATA_DATASET)
            noisy, certified = dp.noisy_counts([exact.get(k, 0) for k in keys], epsilon)
            result: dict[str, Any] = {
                "as_of": counted["as_of"], "epsilon": certified,
                "noise_stddev": dp.count_stddev(epsilon),
                "cells": [{"town_code": t, "age_band": b, "sex": s, "count": n}
                          for (t, b, s), n in zip(keys, noisy, strict=True)]}
            self._release(conn, lgcode, OPENDATA_GENERATOR, {"kind": "opendata_population"},
                          epsilon, result, OPENDATA_DATASET)
        return {"as_of": counted["as_of"], "towns": counted["towns"], "epsilon": certified,
                "noise_stddev": result["noise_stddev"], "release_id": result["release_id"],
                "counts": [(t, b, s, n) for (t, b, s), n in zip(keys, noisy, strict=True)]}

    def releases(self, lgcode: str) -> list[dict[str, Any]]:
        """Public: every DP release (noisy values only, which are safe to publish)."""
        with self.db.tenant(lgcode) as conn:
            return [{"id": r["id"], "dataset": r["dataset"], "query": r["query"],
                     "epsilon": r["epsilon"], "released_at": r["released_at"].isoformat(),
                     "result": r["result"]} for r in store.list_releases(conn, lgcode)]

    def seed_demo(self, lgcodes: list[str]) -> int:
        """Demo data: a privacy budget (ε = 3) and a call for proposals open for 60 days, in
        each municipality that has neither yet. Returns how many were seeded."""
        seeded = 0
        today = self.today()
        for lgcode in lgcodes:
            demo = StaffMember(id="demo", lgcode=lgcode, username="demo", display_name="demo",
                               department="", roles=frozenset({Role.PRIVACY_OFFICER}))
            with self.db.tenant(lgcode) as conn:
                fresh = not store.all_budgets(conn, lgcode) and not store.calls(conn, lgcode)
            if fresh:
                self.set_budget(demo, lgcode, 3.0)
                self.open_call(demo, lgcode, "行政機関等匿名加工情報の提案募集(デモ)", today,
                               date.fromordinal(today.toordinal() + 59), ["resident_registry"])
                seeded += 1
        return seeded

    def dashboard(self, actor: StaffMember, lgcode: str, channel: str) -> dict[str, Any]:
        _audit(actor, lgcode)
        return {"flagged": self.flagged(actor, lgcode, channel=channel),
                "proposals": self.proposals(actor, lgcode,
                                            ["submitted", "approved", "processed", "contracted"]),
                "budgets": self.budgets(actor, lgcode)}

