"""Use cases of the annual assessment (賦課): importing income data, assessing a municipality
(in process, or as jobs on a PostgreSQL queue shared by workers), single assessments and 更正
through the standard API, notices and certificates as data.

Taxpayers are the residents on 1 January of the fiscal year (地方税法 294条, 318条), read
through the registry's service. Each assessment stores the hash of everything its result
depends on; an unchanged hash stores nothing, a changed one stores a new version (更正) with
its reason and the difference, and the earlier versions stay.

A job is claimed, worked and marked done in one transaction: a worker killed mid-job (SIGKILL)
leaves nothing of that job behind, and the job is simply claimed again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any, TextIO

from sqlalchemy import Connection

from kiban.core.clock import Clock, today_jst
from kiban.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from kiban.documents import tax_notices
from kiban.platform.auth import Role, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.registry.service import Registry
from kiban.standard import spec as standard_spec
from kiban.tax import batch_model as bm
from kiban.tax import batch_store as st
from kiban.tax import engine
from kiban.tax.model import DESIGNATED_CITIES, MunicipalOptions

JOB_SIZE = int(os.environ.get("KIBAN_TAX_JOB_SIZE", "20000"))
# Seconds a worker waits after claiming each job, before working it: a throttle that spreads
# a run's load (say, during office hours). The job stays claimed meanwhile.
JOB_PAUSE = float(os.environ.get("KIBAN_TAX_JOB_PAUSE", "0") or 0)
SYSTEM = "system"
ISSUE_LIMIT = 50  # problems kept per job (ids and field names only)
OptionsFor = Callable[[str, int], MunicipalOptions]


def require_tax(actor: StaffMember, lgcode: str) -> None:
    """税務担当 of this municipality only; another municipality's staff learn nothing."""
    if Role.TAX_OFFICER not in actor.roles:
        raise Forbidden("税務担当の権限が必要です。", "The tax_officer role is required.")
    if actor.lgcode != lgcode:
        raise Forbidden("この地方公共団体のデータは扱えません。",
                        "You cannot act for this municipality.")


def standard_options(lgcode: str, fiscal_year: int) -> MunicipalOptions:
    del fiscal_year
    return MunicipalOptions.standard(designated_city=lgcode in DESIGNATED_CITIES)


def options_json(options: MunicipalOptions, fiscal_year: int) -> dict[str, Any]:
    return options.as_json(fiscal_year)


def options_from_json(data: dict[str, Any]) -> MunicipalOptions:
    from decimal import Decimal

    from kiban.tax.model import Ordinance
    ordinance = data.get("ordinance")
    return MunicipalOptions(
        grade=str(data["grade"]), designated_city=bool(data["designated_city"]),
        municipal_income_rate=Decimal(str(data["municipal_income_rate"])),
        prefectural_income_rate=Decimal(str(data["prefectural_income_rate"])),
        municipal_per_capita=int(data["municipal_per_capita"]),
        prefectural_per_capita=int(data["prefectural_per_capita"]),
        ordinance=None if not ordinance else Ordinance(
            ordinance["name"], date.fromisoformat(ordinance["promulgated_on"])))


# stored figure -> the Outcome array it comes from
FIGURE_SOURCES = (("total", "total"), ("income_levy_municipal", "municipal_income_levy"),
                  ("income_levy_prefectural", "prefectural_income_levy"),
                  ("per_capita_municipal", "municipal_per_capita"),
                  ("per_capita_prefectural", "prefectural_per_capita"),
                  ("forest_environment_tax", "forest_environment_tax"),
                  ("taxable_income", "taxable_income"), ("total_income", "total_income"))


def non_taxable_of(outcome: engine.Outcome, i: int) -> str:
    if bool(outcome.non_taxable_all[i]):
        return "all"
    if bool(outcome.non_taxable_income_levy[i]):
        return "income_levy"
    return "none"


def figures_of(outcome: engine.Outcome, i: int) -> dict[str, Any]:
    return {"total": int(outcome.total[i]),
            "income_levy_municipal": int(outcome.municipal_income_levy[i]),
            "income_levy_prefectural": int(outcome.prefectural_income_levy[i]),
            "per_capita_municipal": int(outcome.municipal_per_capita[i]),
            "per_capita_prefectural": int(outcome.prefectural_per_capita[i]),
            "forest_environment_tax": int(outcome.forest_environment_tax[i]),
            "taxable_income": int(outcome.taxable_income[i]),
            "total_income": int(outcome.total_income[i]),
            "non_taxable": non_taxable_of(outcome, i)}


def _parse(body: dict[str, Any]) -> Any:
    from kiban.tax.requests import parse_calculation_request
    return parse_calculation_request(body)


def _compute(parsed: list[dict[str, Any]], fiscal_year: int, options: MunicipalOptions
             ) -> engine.Outcome:
    """The engine over requests already parsed (kiban.tax.requests), one row each."""
    return engine.compute(engine.population_from_requests(parsed), fiscal_year, options)


def _with_grade(options: MunicipalOptions, parsed: dict[str, Any]) -> MunicipalOptions:
    """A request may name its 級地; otherwise the municipality's applies."""
    return options.with_grade(parsed["grade"]) if parsed.get("grade") else options


def _taxpayer_number(lgcode: str, key: str) -> str:
    return hashlib.sha256(f"{lgcode}:{key}".encode()).hexdigest()[:16].upper()


def assessment_id(lgcode: str, fiscal_year: int, resident_id: str) -> str:
    """A batch assessment's id follows from whom and which year: a repeated run meets it."""
    return hashlib.sha256(f"{lgcode}:{fiscal_year}:{resident_id}".encode()).hexdigest()[:32]


class Assessments:
    def __init__(self, db: Database, clock: Clock, registry: Registry,
                 municipalities: Municipalities, options_for: OptionsFor | None = None) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.municipalities = municipalities
        self.options_for = options_for or standard_options

    # --- import of income data --------------------------------------------------------------

    def import_csv(self, actor_id: str, lgcode: str, fiscal_year: int, stream: TextIO,
                   filename: str = "") -> dict[str, Any]:
        """Reads a CSV of income records (docs/tax-batch.md). Good lines are stored (a line
        whose key is stored already replaces it if its content differs: a correction); bad
        lines are stored with every field at fault, to be corrected and imported again. A
        header that does not fit refuses the whole file. Importing the same file twice
        changes nothing."""
        self._check_year(fiscal_year)
        text = stream.read()
        if text.startswith("\ufeff"):
            text = text[1:]
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader, [])]
        errors = bm.header_errors(header)
        if errors:
            raise ValidationFailed(errors)
        taxpayers = self.registry.taxpayers_on(lgcode, date(fiscal_year, 1, 1))
        by_code = {t[1]: (t[0], t[5]) for t in taxpayers}
        by_number = {t[2]: (t[0], t[5]) for t in taxpayers if t[2]}
        del taxpayers
        good: dict[str, dict[str, Any]] = {}
        bad: list[bm.RowProblem] = []
        now = self.clock.now()
        import_id = uuid.uuid4().hex
        lines = 0
        for line_no, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            lines += 1
            raw = dict(zip(header, cells, strict=False))
            if len(cells) != len(header):
                bad.append(bm.RowProblem(line_no, [FieldError(
                    "line", f"列の数が見出しと違います({len(cells)}列、見出しは{len(header)}列)。",
                    f"{len(cells)} cells where the header has {len(header)}")], raw))
                continue
            parsed, problems = bm.parse_row(raw)
            if parsed is not None:
                found = (by_code.get(parsed.juminhyo_code) if parsed.juminhyo_code
                         else by_number.get(parsed.my_number))
                if found is None:
                    field = "juminhyo_code" if parsed.juminhyo_code else "my_number"
                    problems = [FieldError(field, "1月1日現在の住民に該当する者がいません。",
                                           f"no resident on 1 January {fiscal_year} has this "
                                           f"{field}")]
                elif parsed.juminhyo_code and parsed.my_number and \
                        by_number.get(parsed.my_number, found)[0] != found[0]:
                    problems = [FieldError("my_number", "住民票コードと個人番号が別の人を指しています。",
                                           "juminhyo_code and my_number name different people")]
                else:
                    declared = parsed.data.get("taxpayer", {}).get("declared_birth_date")
                    if declared and declared != found[1].isoformat():
                        problems = [FieldError("birth_date", "生年月日が住民記録と一致しません。",
                                               "birth_date differs from the registry")]
            if problems or parsed is None:
                bad.append(bm.RowProblem(line_no, problems, raw))
                continue
            key = bm.record_key(lgcode, fiscal_year, parsed.record_type, parsed.payer_number,
                                parsed.record_id)
            if key in good:
                bad.append(bm.RowProblem(line_no, [FieldError(
                    "record_id", "同じ資料番号の行がこのファイルに2つあります。",
                    "the same record key appears twice in this file")], raw))
                continue
            assert found is not None
            good[key] = {"lgcode": lgcode, "id": key, "fiscal_year": fiscal_year,
                         "record_type": parsed.record_type, "payer_number": parsed.payer_number,
                         "record_id": parsed.record_id, "payer_name": parsed.payer_name,
                         "resident_id": found[0], "data": parsed.data,
                         "content_hash": bm.digest([found[0], parsed.payer_name, parsed.data]),
                         "version": 1, "import_id": import_id, "updated_at": now}
        with self.db.tenant(lgcode) as conn:
            stored = st.existing_records(conn, lgcode, list(good))
            added = [r for k, r in good.items() if k not in stored]
            changed = []
            for key, row in good.items():
                if key in stored and stored[key][0] != row["content_hash"]:
                    changed.append({**row, "version": stored[key][1] + 1})
            st.insert_records(conn, added)
            st.replace_records(conn, lgcode, changed)
            st.resolve_errors(conn, lgcode, fiscal_year, (
                (r["record_type"], r["payer_number"], r["record_id"]) for r in good.values()))
            st.insert_import_errors(conn, [
                {"lgcode": lgcode, "import_id": import_id, "line": p.line,
                 "fiscal_year": fiscal_year, "errors": [e.__dict__ for e in p.errors],
                 "raw": p.raw, "resolved": False} for p in bad])
            report = {"lgcode": lgcode, "id": import_id, "fiscal_year": fiscal_year,
                      "filename": filename[:200],
                      "sha256": hashlib.sha256(text.encode()).hexdigest(), "lines": lines,
                      "added": len(added), "corrected": len(changed),
                      "unchanged": len(good) - len(added) - len(changed), "rejected": len(bad),
                      "imported_at": now, "actor": actor_id}
            st.insert_import(conn, report)
        return {**report, "imported_at": now.isoformat(),
                "errors": [{"line": p.line, "errors": [e.__dict__ for e in p.errors]}
                           for p in bad]}

    def import_errors(self, actor: StaffMember, lgcode: str, fiscal_year: int
                      ) -> list[dict[str, Any]]:
        require_tax(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            return st.open_errors(conn, lgcode, fiscal_year)

    @staticmethod
    def _check_year(fiscal_year: int) -> None:
        from kiban.tax.model import SUPPORTED_FISCAL_YEARS
        if fiscal_year not in SUPPORTED_FISCAL_YEARS:
            raise ValidationFailed([FieldError(
                "fiscal_year", "対応していない課税年度です。",
                f"fiscal_year must be one of {', '.join(map(str, SUPPORTED_FISCAL_YEARS))}")])

    # --- runs ---------------------------------------------------------------------------------

    def _option_set(self, conn: Connection, lgcode: str, fiscal_year: int
                    ) -> tuple[str, MunicipalOptions, dict[str, Any]]:
        options = self.options_for(lgcode, fiscal_year)
        data = options_json(options, fiscal_year)
        key = bm.digest(data)[:32]
        st.save_options(conn, lgcode, key, fiscal_year, data)
        return key, options, data

    def plan(self, lgcode: str, fiscal_year: int, actor_id: str = SYSTEM,
             job_size: int | None = None) -> dict[str, Any]:
        """The run of the year still unfinished, or a new one: the taxpayers on 1 January cut
        into jobs of `job_size` by resident id. Planned in one transaction: all jobs or none."""
        self._check_year(fiscal_year)
        self.municipalities.get(lgcode)
        size = job_size or JOB_SIZE
        with self.db.unit_of_work(lgcode) as conn:
            open_run = st.unfinished_run(conn, lgcode, fiscal_year)
            if open_run is not None:
                return open_run
            ids = [t[0] for t in self.registry.taxpayers_on(lgcode, date(fiscal_year, 1, 1))]
            key, _, _ = self._option_set(conn, lgcode, fiscal_year)
            run_id = uuid.uuid4().hex
            chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
            run = {"lgcode": lgcode, "id": run_id, "fiscal_year": fiscal_year,
                   "taxpayers": len(ids), "jobs": len(chunks), "options_key": key,
                   "started_at": self.clock.now(), "actor": actor_id}
            st.insert_run(conn, run, [
                {"run_id": run_id, "seq": i, "lgcode": lgcode, "fiscal_year": fiscal_year,
                 "first_id": chunk[0], "last_id": chunk[-1], "status": "queued",
                 "taxpayers": 0, "created": 0, "corrected": 0, "unchanged": 0, "failed": 0,
                 "histogram": [], "problems": [], "worker": ""} for i, chunk in enumerate(chunks)])
        return run

    def work(self, worker: str | None = None, *, run_id: str | None = None,
             lgcode: str | None = None, max_jobs: int | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None) -> int:
        """Claims and runs queued jobs until none is left (or `max_jobs`); returns how many it
        ran. Several workers, on several machines, may work the same queue on PostgreSQL."""
        name = (worker or f"{socket.gethostname()}:{os.getpid()}")[:64]
        done = 0
        while max_jobs is None or done < max_jobs:
            with self.db.platform() as conn:
                target = lgcode or st.peek(conn, run_id)
            if target is None:
                break
            with self.db.unit_of_work(target) as conn:
                job = st.claim(conn, target, run_id)
                if job is None:
                    if lgcode is not None:
                        break
                    time.sleep(0.2)  # others hold every job of this municipality: look again
                    continue
                if JOB_PAUSE:
                    time.sleep(JOB_PAUSE)
                summary = self._run_job(conn, job, name)
            done += 1
            if progress is not None:
                progress(summary)
        return done

    def _run_job(self, conn: Connection, job: dict[str, Any], worker: str) -> dict[str, Any]:
        """One job: its taxpayers' records combined, the engine over all of them at once, and
        a new version only where the input hash changed. Runs in the claiming transaction."""
        lgcode, fy = job["lgcode"], job["fiscal_year"]
        first, last = job["first_id"], job["last_id"]
        run = st.get_run(conn, lgcode, job["run_id"])
        assert run is not None
        options_key = run["options_key"]
        options_data = st.get_options(conn, lgcode, options_key)
        assert options_data is not None
        options = options_from_json(options_data)
        people = self.registry.taxpayers_on(lgcode, date(fy, 1, 1), first, last)
        records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in st.records_between(conn, lgcode, fy, first, last):
            records[r.resident_id].append({"record_type": r.record_type,
                                           "payer_number": r.payer_number,
                                           "payer_name": r.payer_name, "record_id": r.record_id,
                                           "data": r.data, "hash": r.content_hash})
        current = st.current_between(conn, lgcode, fy, first, last)
        # The input hash follows from the registry's facts and the records' content hashes
        # alone, so an unchanged taxpayer is recognised before anything is combined or
        # computed: only the new and the changed are (same hash, same result: nothing to do).
        requests, collections, hashes, ids = [], [], [], []
        previous: list[tuple[str, int, str, int] | None] = []
        unchanged_totals: list[int] = []
        for p in people:
            own = records.get(p[0], ())
            digest = bm.batch_hash(p, (r["hash"] for r in own), options_key, fy)
            existing = current.get(p[0])
            if existing is not None and existing[2] == digest:
                unchanged_totals.append(existing[3])
                continue
            person = bm.Person(p[0], p[3], p[4], p[5].isoformat(), p[6], p[7] or "", p[8] or "",
                               p[9] or "")
            request, collection = bm.combine(person, own, fy)
            requests.append(request)
            collections.append(collection)
            hashes.append(digest)
            ids.append(p[0])
            previous.append(existing)
        # The engine's columns straight from the combined requests (no per-taxpayer request
        # in the standard shape): the same population as _compute(normalise(...)), tested.
        outcome = (engine.compute(engine.population_from_combined(requests), fy, options)
                   if requests else None)
        now = self.clock.now()
        created_rows = [i for i, e in enumerate(previous) if e is None]
        corrected_rows = [i for i, e in enumerate(previous) if e is not None]
        before = [e for e in previous if e is not None]
        created, corrected = len(created_rows), len(corrected_rows)
        unchanged = len(unchanged_totals)
        columns: dict[str, list[Any]] = {}
        if outcome is not None:
            columns = {name: getattr(outcome, source).tolist() for name, source in FIGURE_SOURCES}
        written = created_rows + corrected_rows
        if written:
            no_tax = outcome.non_taxable_all.tolist() if outcome is not None else []
            no_levy = outcome.non_taxable_income_levy.tolist() if outcome is not None else []
            new_ids = [assessment_id(lgcode, fy, ids[i]) for i in created_rows]
            st.bulk_insert_columns(conn, st.versions, {
                "lgcode": st.Same(lgcode),
                "assessment_id": new_ids + [e[0] for e in before],
                "version": [1] * created + [e[1] + 1 for e in before],
                "input": [requests[i] for i in written],
                "collection": [collections[i] for i in written],
                "options_key": st.Same(options_key),
                "input_hash": [hashes[i] for i in written],
                **{name: [values[i] for i in written] for name, values in columns.items()},
                "non_taxable": ["all" if no_tax[i] else "income_levy" if no_levy[i] else "none"
                                for i in written],
                "reason": [None] * created + ["所得資料の訂正等による更正"] * corrected,
                "previous_total": [None] * created + [e[3] for e in before],
                "run_id": st.Same(run["id"]), "created_at": st.Same(now),
                "created_by": st.Same(run["actor"])})
            totals = columns["total"]
            st.bulk_insert_columns(conn, st.assessments, {
                "lgcode": st.Same(lgcode), "id": new_ids, "fiscal_year": st.Same(fy),
                "resident_id": [ids[i] for i in created_rows],
                "taxpayer_number": [_taxpayer_number(lgcode, ids[i]) for i in created_rows],
                "version": st.Same(1), "total": [totals[i] for i in created_rows],
                "input_hash": [hashes[i] for i in created_rows],
                "family_name": [requests[i]["taxpayer"]["family_name"] for i in created_rows],
                "given_name": [requests[i]["taxpayer"]["given_name"] for i in created_rows],
                "updated_at": st.Same(now)})
            st.advance(conn, lgcode, [
                {"id": e[0], "version": e[1] + 1, "total": totals[i], "input_hash": hashes[i],
                 "updated_at": now} for i, e in zip(corrected_rows, before, strict=True)])
        counts = bm.histogram([*columns.get("total", []), *unchanged_totals])
        values = {"taxpayers": len(people), "created": created, "corrected": corrected,
                  "unchanged": unchanged, "failed": 0, "histogram": counts, "problems": [],
                  "worker": worker, "finished_at": now}
        st.finish_job(conn, job["run_id"], job["seq"], values)
        return {"run_id": job["run_id"], "seq": job["seq"], **values}

    def assess(self, lgcode: str, fiscal_year: int, actor_id: str = SYSTEM, *,
               job_size: int | None = None, work: bool = True,
               progress: Callable[[dict[str, Any]], None] | None = None,
               wait: float = 0.5) -> dict[str, Any]:
        """`kiban tax assess`: plan (or resume) the year's run, work its jobs in this process,
        and on PostgreSQL wait for jobs other workers hold; returns the run's summary."""
        run = self.plan(lgcode, fiscal_year, actor_id, job_size)
        if work:
            self.work(run_id=run["id"], lgcode=lgcode, progress=progress)
            while self.db.is_postgres:
                summary = self.run_summary_system(lgcode, run["id"])
                if summary["jobs_done"] >= summary["jobs"]:
                    break
                time.sleep(wait)
        return self.run_summary_system(lgcode, run["id"])

    def run_summary_system(self, lgcode: str, run_id: str) -> dict[str, Any]:
        with self.db.tenant(lgcode) as conn:
            run = st.get_run(conn, lgcode, run_id)
            if run is None:
                raise NotFound("処理が見つかりません。", "Run not found.")
            jobs = st.run_jobs(conn, lgcode, run_id)
        done = [j for j in jobs if j["status"] == "done"]
        counts = [0] * len(bm.HISTOGRAM_BOUNDS)
        for j in done:
            for i, n in enumerate(j["histogram"] or []):
                counts[i] += n
        problems = [p for j in done for p in (j["problems"] or [])][:ISSUE_LIMIT]
        return {"id": run_id, "lgcode": lgcode, "fiscal_year": run["fiscal_year"],
                "started_at": run["started_at"].isoformat(), "taxpayers": run["taxpayers"],
                "jobs": run["jobs"], "jobs_done": len(done),
                "status": "done" if len(done) == run["jobs"] else "running",
                **{k: sum(j[k] for j in done) for k in ("created", "corrected", "unchanged",
                                                          "failed")},
                "assessed": sum(j["taxpayers"] for j in done),
                "histogram": [{"band": bm.band_label(i), "count": n}
                              for i, n in enumerate(counts)],
                "problems": problems,
                "finished_at": max((j["finished_at"].isoformat() for j in done), default=None)}

    def run_summary(self, actor: StaffMember, lgcode: str, run_id: str) -> dict[str, Any]:
        require_tax(actor, lgcode)
        return self.run_summary_system(lgcode, run_id)

    def runs(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        require_tax(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            rows = st.list_runs(conn, lgcode)
            for row in rows:
                row["jobs_done"], _ = st.job_progress(conn, row["id"])
        return rows

    # --- the standard API: one assessment ---------------------------------------------------------

    def _validated(self, lgcode: str, body: dict[str, Any], fiscal_year: int | None = None
                   ) -> tuple[dict[str, Any], Any]:
        """The calculation body checked by the engine's parser, plus the assessment's own
        requirements (a name and an address). Returns (body, parsed)."""
        if fiscal_year is not None:
            body = {**body, "fiscal_year": fiscal_year}
        parsed = _parse(body)
        raw = body.get("taxpayer")
        taxpayer: dict[str, Any] = raw if isinstance(raw, dict) else {}
        errors = []
        for name in ("family_name", "given_name"):
            value = taxpayer.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                errors.append(FieldError(f"taxpayer.{name}", "氏名を入力してください(100文字以内)。",
                                         f"taxpayer.{name} is required (at most 100 characters)"))
        address = taxpayer.get("address")
        if not isinstance(address, dict):
            errors.append(FieldError("taxpayer.address", "住所を入力してください。",
                                     "taxpayer.address is required"))
        else:
            for name in ("town_code", "banchi"):
                if not isinstance(address.get(name), str) or not address[name].strip():
                    errors.append(FieldError(f"taxpayer.address.{name}", "住所の項目がありません。",
                                             f"taxpayer.address.{name} is required"))
        if errors:
            raise ValidationFailed(errors)
        return body, parsed

    @staticmethod
    def _collection(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationFailed([FieldError("collection", "徴収方法を指定してください。",
                                               "collection is required")])
        unknown = [k for k in value if k not in ("method", "special_collector")]
        if unknown:
            raise ValidationFailed([FieldError(f"collection.{unknown[0]}", "未知の項目です。",
                                               f"collection.{unknown[0]} is not a field")])
        method = value.get("method")
        if method not in ("special", "ordinary", "pension"):
            raise ValidationFailed([FieldError(
                "collection.method", "徴収方法は special・ordinary・pension のいずれかです。",
                "collection.method must be special, ordinary or pension")])
        collector = value.get("special_collector")
        if method != "special":
            if collector is not None:
                raise ValidationFailed([FieldError(
                    "collection.special_collector", "特別徴収義務者は特別徴収のときだけ指定します。",
                    "special_collector is given only for method special")])
            return {"method": method}
        errors = []
        if not isinstance(collector, dict):
            collector = {}
        for name, limit in (("number", 20), ("name", 200)):
            item = collector.get(name)
            if not isinstance(item, str) or not item.strip() or len(item) > limit:
                errors.append(FieldError(f"collection.special_collector.{name}",
                                         "特別徴収義務者の指定番号と名称が必要です。",
                                         f"collection.special_collector.{name} is required"))
        extra = [k for k in collector if k not in ("number", "name")]
        if extra:
            errors.append(FieldError(f"collection.special_collector.{extra[0]}",
                                     "未知の項目です。", "unknown field"))
        if errors:
            raise ValidationFailed(errors)
        return {"method": "special", "special_collector": {"number": collector["number"],
                                                           "name": collector["name"]}}

    def create(self, actor: StaffMember, lgcode: str, payload: Any) -> dict[str, Any]:
        require_tax(actor, lgcode)
        if not isinstance(payload, dict):
            raise ValidationFailed([FieldError("body", "JSONオブジェクトを送ってください。",
                                               "the body must be a JSON object")])
        body = dict(payload)
        collection = self._collection(body.pop("collection", None))
        body, parsed = self._validated(lgcode, body)
        fy = int(parsed["fiscal_year"])
        body["fiscal_year"] = fy
        now = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            key, options, options_data = self._option_set(conn, lgcode, fy)
            outcome = _compute([parsed], fy, _with_grade(options, parsed))
            figures = figures_of(outcome, 0)
            aid = uuid.uuid4().hex
            request = {k: v for k, v in body.items() if k != "fiscal_year"}
            digest = bm.input_hash(request, collection, fy, options_data)
            st.insert_assessments(conn, [{
                "lgcode": lgcode, "id": aid, "fiscal_year": fy, "resident_id": None,
                "taxpayer_number": _taxpayer_number(lgcode, aid), "version": 1,
                "total": figures["total"], "input_hash": digest,
                "family_name": body["taxpayer"]["family_name"].strip(),
                "given_name": body["taxpayer"]["given_name"].strip(), "updated_at": now}])
            st.insert_versions(conn, [{
                "lgcode": lgcode, "assessment_id": aid, "version": 1, "input": request,
                "collection": collection, "options_key": key, "input_hash": digest, **figures,
                "reason": None, "previous_total": None, "run_id": None, "created_at": now,
                "created_by": actor.id}])
        return self.get(actor, lgcode, aid)

    def _load(self, conn: Connection, lgcode: str, assessment_id: str, lock: bool = False
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        row = st.get_assessment(conn, lgcode, assessment_id, lock=lock)
        if row is None:
            raise NotFound("賦課が見つかりません。", "Assessment not found.")
        return row, st.version_rows(conn, lgcode, assessment_id)

    def _view(self, conn: Connection, lgcode: str, row: dict[str, Any],
              history: list[dict[str, Any]]) -> dict[str, Any]:
        """The API shape of the current version, recomputed in full (with steps) from its
        stored input and options, and checked against the stored total."""
        latest = history[-1]
        options_data = st.get_options(conn, lgcode, latest["options_key"])
        assert options_data is not None
        options = options_from_json(options_data)
        parsed = _parse({"fiscal_year": row["fiscal_year"], **latest["input"]})
        options = _with_grade(options, parsed)
        outcome = _compute([parsed], row["fiscal_year"], options)
        calculation = engine.outcome_response(outcome, 0, lgcode=lgcode)
        if int(calculation["total"]) != int(latest["total"]):
            # The rules changed under a stored assessment: show what was decided, loudly.
            calculation["recomputed_total"] = calculation["total"]
            calculation["total"] = latest["total"]
        collection = dict(latest["collection"])
        collection["instalments"] = bm.instalments(int(latest["total"]), collection["method"],
                                                   row["fiscal_year"])
        return {"id": row["id"], "version": row["version"], "fiscal_year": row["fiscal_year"],
                "taxpayer_number": row["taxpayer_number"], "resident_id": row["resident_id"],
                "input": latest["input"], "calculation": calculation, "collection": collection,
                "history": [{"version": h["version"], "total": h["total"], "reason": h["reason"],
                             "at": h["created_at"].isoformat(),
                             "difference": None if h["previous_total"] is None
                             else h["total"] - h["previous_total"]} for h in history]}

    def get(self, actor: StaffMember, lgcode: str, assessment_id: str) -> dict[str, Any]:
        require_tax(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            row, history = self._load(conn, lgcode, assessment_id)
            return self._view(conn, lgcode, row, history)

    def of_resident(self, actor: StaffMember, lgcode: str, fiscal_year: int,
                    resident_id: str) -> dict[str, Any]:
        return self.get(actor, lgcode, assessment_id(lgcode, fiscal_year, resident_id))

    def search(self, actor: StaffMember, lgcode: str, fiscal_year: int,
               name: str | None = None) -> list[dict[str, Any]]:
        require_tax(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            return st.search_assessments(conn, lgcode, fiscal_year, (name or "").strip() or None)

    def correct(self, actor: StaffMember, lgcode: str, assessment_id: str,
                payload: Any) -> dict[str, Any]:
        """更正 (within the period of 地方税法 17条の5): a new version from corrected input, with its reason; the
        earlier versions stay. The answer carries the difference and the F-TAX-05 notice."""
        require_tax(actor, lgcode)
        if not isinstance(payload, dict):
            raise ValidationFailed([FieldError("body", "JSONオブジェクトを送ってください。",
                                               "the body must be a JSON object")])
        unknown = [k for k in payload if k not in ("reason", "input")]
        if unknown:
            raise ValidationFailed([FieldError(unknown[0], "未知の項目です。",
                                               f"{unknown[0]} is not a field")])
        reason = payload.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 400:
            raise ValidationFailed([FieldError("reason", "更正の理由を入力してください(400文字以内)。",
                                               "reason is required (at most 400 characters)")])
        given = payload.get("input")
        if not isinstance(given, dict):
            raise ValidationFailed([FieldError("input", "更正後の入力が必要です。",
                                               "input is required")])
        for name in ("fiscal_year", "collection"):
            if name in given:
                raise ValidationFailed([FieldError(f"input.{name}", "更正では変更できません。",
                                                   f"input.{name} cannot be corrected")])
        now = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            row, history = self._load(conn, lgcode, assessment_id, lock=True)
            fy = row["fiscal_year"]
            try:
                body, parsed = self._validated(lgcode, dict(given), fiscal_year=fy)
            except ValidationFailed as exc:
                raise ValidationFailed([FieldError(f"input.{e.field}", e.ja, e.en)
                                        for e in exc.errors]) from exc
            latest = history[-1]
            key, options, options_data = self._option_set(conn, lgcode, fy)
            outcome = _compute([parsed], fy, _with_grade(options, parsed))
            figures = figures_of(outcome, 0)
            request = {k: v for k, v in body.items() if k != "fiscal_year"}
            digest = bm.input_hash(request, latest["collection"], fy, options_data)
            version = row["version"] + 1
            st.insert_versions(conn, [{
                "lgcode": lgcode, "assessment_id": assessment_id, "version": version,
                "input": request, "collection": latest["collection"], "options_key": key,
                "input_hash": digest, **figures, "reason": reason.strip(),
                "previous_total": latest["total"], "run_id": None, "created_at": now,
                "created_by": actor.id}])
            st.advance(conn, lgcode, [{"id": assessment_id, "version": version,
                                       "total": figures["total"], "input_hash": digest,
                                       "updated_at": now}])
            row, history = self._load(conn, lgcode, assessment_id)
            view = self._view(conn, lgcode, row, history)
        view["previous_total"] = latest["total"]
        view["difference"] = view["calculation"]["total"] - latest["total"]
        view["notice"] = self._form("F-TAX-05", lgcode, view, {
            "tax.correction_reason": reason.strip(), "tax.previous_annual_tax": latest["total"],
            "tax.annual_tax_difference": view["difference"]})
        return view

    # --- forms --------------------------------------------------------------------------------

    def _form(self, form_id: str, lgcode: str, view: dict[str, Any],
              extra: dict[str, Any]) -> dict[str, Any]:
        muni = self.municipalities.get(lgcode)
        issuer = f"{muni['name']}長"
        values = bm.form_values(view, {
            "tax.notice_date": today_jst(self.clock).isoformat(),
            "tax.appeal_notice": bm.APPEAL_NOTICE.format(issuer=issuer, body=muni["name"]),
            "certificate.issuer": f"{issuer} {muni['settings'].get('certificate_issuer_name', '')}"
            .strip(),
            **extra})
        return bm.build_form(standard_spec.current().forms[form_id], values)

    def notice(self, actor: StaffMember, lgcode: str, assessment_id: str, kind: str
               ) -> dict[str, Any]:
        """F-TAX-01 (特別徴収税額決定通知書) or F-TAX-02 (納税通知書); 409 when the assessment is
        not collected that way."""
        view = self.get(actor, lgcode, assessment_id)
        methods = {e["method"] for e in view["collection"]["instalments"]} or \
            {view["collection"]["method"]}
        if kind == "special-collection":
            if view["collection"]["method"] != "special":
                raise Conflict("特別徴収ではありません。", "This tax is not collected by the employer.")
            return self._form("F-TAX-01", lgcode, view, {})
        if kind == "tax-notice":
            if "ordinary" not in methods:
                raise Conflict("普通徴収の税額がありません。", "Nothing is collected by 普通徴収.")
            ordinary = [e for e in view["collection"]["instalments"] if e["method"] == "ordinary"]
            return self._form("F-TAX-02", lgcode, view, {
                "tax.instalment_period": [e["period"] for e in ordinary],
                "tax.instalment_amount": [e["amount"] for e in ordinary],
                "tax.due_date": [e["due_date"] for e in ordinary]})
        raise NotFound()

    def _certified(self, actor: StaffMember, lgcode: str, payload: Any
                   ) -> tuple[str, dict[str, Any]]:
        """The kind and the assessment a certificate request names, checked."""
        require_tax(actor, lgcode)
        if not isinstance(payload, dict):
            raise ValidationFailed([FieldError("body", "JSONオブジェクトを送ってください。",
                                               "the body must be a JSON object")])
        unknown = [k for k in payload if k not in ("assessment_id", "kind")]
        if unknown:
            raise ValidationFailed([FieldError(unknown[0], "未知の項目です。",
                                               f"{unknown[0]} is not a field")])
        kind = payload.get("kind")
        if kind not in ("taxation", "non_taxation"):
            raise ValidationFailed([FieldError("kind", "証明書の種類は taxation か non_taxation です。",
                                               "kind must be taxation or non_taxation")])
        aid = payload.get("assessment_id")
        if not isinstance(aid, str) or not aid:
            raise ValidationFailed([FieldError("assessment_id", "賦課を指定してください。",
                                               "assessment_id is required")])
        try:
            view = self.get(actor, lgcode, aid)
        except NotFound as exc:
            raise ValidationFailed([FieldError("assessment_id", "賦課が見つかりません。",
                                               "no such assessment")]) from exc
        if kind == "non_taxation" and view["calculation"]["non_taxable"] != "all":
            raise Conflict("課税されている者の非課税証明書は交付できません。",
                           "This person is taxed: no non-taxation certificate.", field="kind")
        return kind, view

    def certificate(self, actor: StaffMember, lgcode: str, payload: Any) -> dict[str, Any]:
        """F-TAX-03 所得・課税証明書 or F-TAX-04 非課税証明書, as data (other procedures read it
        here); a 非課税証明書 for a taxed person is refused (409)."""
        kind, view = self._certified(actor, lgcode, payload)
        serial = f"T{view['fiscal_year']}-{uuid.uuid4().hex[:10].upper()}"
        form = self._form("F-TAX-03" if kind == "taxation" else "F-TAX-04", lgcode, view, {
            "certificate.serial": serial,
            "certificate.issued_on": today_jst(self.clock).isoformat()})
        return {**form, "assessment_id": view["id"], "serial": serial}

    def issue_certificate_pdf(self, actor: StaffMember, lgcode: str, assessment_id: str,
                              kind: str) -> tuple[str, bytes]:
        """The certificate as the document a resident hands to a bank or a school: a PDF
        signed with the municipality's document key, with a serial and verification code that
        /verify vouches for (issue 5 part 6). Returns the serial and the signed PDF."""
        kind, view = self._certified(actor, lgcode, {"assessment_id": assessment_id,
                                                     "kind": kind})
        muni = self.municipalities.get(lgcode)
        labels = {k: str(v.get("name", k)) for k, v in standard_spec.current().items.items()}

        def render(serial: str, issued_on: date) -> bytes:
            form = self._form("F-TAX-03" if kind == "taxation" else "F-TAX-04", lgcode, view, {
                "certificate.serial": serial, "certificate.issued_on": issued_on.isoformat()})
            return tax_notices.render(form, municipality=f"{muni['prefecture']}{muni['name']}",
                                      labels=labels)

        return self.registry.issue_document(
            actor, lgcode, f"tax_{kind}", [view["resident_id"]] if view["resident_id"] else [],
            render, {"assessment_id": view["id"], "fiscal_year": view["fiscal_year"]})


    # --- aggregates for differentially private statistics (issue 9, kiban.privacy) ----------

    def statistics_cells(self, actor: StaffMember, lgcode: str, fiscal_year: int, by: str,
                         upper: int) -> dict[str, Any]:
        """Exact aggregates, never a person, for the privacy service to noise before release:
        per cell, the taxpayers (current assessment with a total above 0) and the sum of their
        所得割 (municipal + prefectural), each person's clamped to [0, upper] yen. Each taxpayer
        is in exactly one cell: `by="town"` the 町字 on 1 January (every 町字 of the master,
        then "" for no known 町字), `by="income_band"` the band of 総所得金額等
        (STATISTICS_BANDS). The cells do not depend on the data."""
        require_tax(actor, lgcode)
        self._check_year(fiscal_year)
        with self.db.tenant(lgcode) as conn:
            rows = st.statistics_rows(conn, lgcode, fiscal_year)
        if by == "town":
            names = self.municipalities.towns(lgcode)
            town_of = {t[0]: t[7] or "" for t in
                       self.registry.taxpayers_on(lgcode, date(fiscal_year, 1, 1))}
            keys = [*sorted(names), ""]
            labels = {**names, "": "町字不明"}
        elif by == "income_band":
            keys = [label for _, label in STATISTICS_BANDS]
            labels = {k: k for k in keys}
        else:
            raise ValidationFailed([FieldError("by", "集計区分は town か income_band です。",
                                               "by is town or income_band.")])
        counts = dict.fromkeys(keys, 0)
        sums = dict.fromkeys(keys, 0)
        persons = 0
        for resident_id, levy_m, levy_p, total_income, total in rows:
            if total <= 0:
                continue
            if by == "town":
                key = town_of.get(resident_id or "", "")
                key = key if key in counts else ""
            else:
                key = next(label for floor, label in reversed(STATISTICS_BANDS)
                           if total_income >= floor or floor == 0)
            counts[key] += 1
            sums[key] += min(max(levy_m + levy_p, 0), upper)
            persons += 1
        return {"fiscal_year": fiscal_year, "by": by, "upper": upper, "persons": persons,
                "cells": [{"key": k, "label": labels.get(k, k), "count": counts[k],
                           "levy_sum": sums[k]} for k in keys]}


# 総所得金額等 bands of the statistics (lower bound in yen, label).
STATISTICS_BANDS = ((0, "100万円未満"), (1_000_000, "100万〜200万円"), (2_000_000, "200万〜300万円"),
                    (3_000_000, "300万〜400万円"), (4_000_000, "400万〜500万円"),
                    (5_000_000, "500万〜700万円"), (7_000_000, "700万〜1000万円"),
                    (10_000_000, "1000万円以上"))
