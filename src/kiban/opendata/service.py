"""Open data use cases: publishing a standard dataset by CSV upload (validated in full,
nothing published until it passes; each publication a new version with history), and the
public reads behind the CKAN-compatible API."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiban.core.clock import Clock, today_jst
from kiban.core.errors import FieldError, KibanError, NotFound, ValidationFailed, invalid
from kiban.opendata import dcat, model, outlines, store
from kiban.platform import ledger
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.privacy.service import Privacy
from kiban.registry.service import Registry

KEY_PREFIX = "kod_"  # Kiban open data: tells a data API key from a staff token (kbn_)
ANONYMOUS_PER_MINUTE = 60
KEY_PER_MINUTE = 600
POPULATION = "population_by_area_age"
GENERATOR = "system:population"  # published_by of the generated dataset's versions
CONSOLE_FILENAME = "console"  # filename of a version published by editing rows in the console
# A directory of outline files (`kiban opendata outlines import`) besides the bundled ones.
OUTLINES_ENV = "KIBAN_OPENDATA_OUTLINES"


class RateLimited(KibanError):
    def __init__(self, retry_after: float) -> None:
        super().__init__("リクエストが多すぎます。しばらく待ってから再試行してください。",
                         "Too many requests: wait and retry.", status=429, code="rate-limited")
        self.retry_after = max(1, int(retry_after + 0.999))


class BadApiKey(KibanError):
    def __init__(self) -> None:
        super().__init__("API キーが無効です。", "Invalid or revoked API key.", status=403,
                         code="forbidden")


@dataclass(frozen=True)
class Caller:
    """Who called the data API: a key's id (None: anonymous) and the limit that applies."""
    key_id: str | None
    per_minute: int


class UploadRejected(ValidationFailed):
    """The upload failed validation: every problem, with its row (0: file or header)."""

    def __init__(self, problems: list[model.Problem]) -> None:
        super().__init__([FieldError(f"row {p.row}: {p.field}" if p.row else p.field, p.ja, p.en)
                          for p in problems])
        self.problems = problems


@dataclass(frozen=True)
class Published:
    dataset_id: str
    version: int
    rows: int
    encoding: str
    extra_columns: list[str]


def dataset_id(lgcode: str, schema_name: str) -> str:
    return f"{lgcode}-{schema_name.replace('_', '-')}"


class OpenData:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.schemas = model.load_schemas()
        self.limiter = model.RateLimiter()
        self.anonymous_per_minute = ANONYMOUS_PER_MINUTE

    # Developer access: API keys, rate limits, usage

    @staticmethod
    def _hash(key: str) -> str:
        # A key is 192 random bits: a plain SHA-256 cannot be reversed or guessed.
        return hashlib.sha256(key.encode()).hexdigest()

    def register_key(self, name: str, contact: str, purpose: str = "") -> tuple[str, dict[str, Any]]:
        """A new API key for a data user: (the key, shown once and never stored, its row)."""
        name, contact, purpose = name.strip(), contact.strip(), purpose.strip()
        errors = []
        if not 1 <= len(name) <= 100:
            errors.append(FieldError("name", "名前(1〜100文字)を入力してください。",
                                     "name: 1 to 100 characters"))
        if not (3 <= len(contact) <= 200 and "@" in contact and " " not in contact):
            errors.append(FieldError("contact", "連絡先のメールアドレスを入力してください。",
                                     "contact: an e-mail address"))
        if len(purpose) > 2000:
            errors.append(FieldError("purpose", "利用目的は2000文字以内です。",
                                     "purpose: at most 2000 characters"))
        if errors:
            raise ValidationFailed(errors)
        key = KEY_PREFIX + secrets.token_urlsafe(24)
        row = {"id": secrets.token_hex(8), "key_hash": self._hash(key), "prefix": key[:10],
               "name": name, "contact": contact, "purpose": purpose,
               "per_minute": KEY_PER_MINUTE, "created_at": self.clock.now(), "revoked_at": None}
        with self.db.platform() as conn:
            store.insert_key(conn, row)
        return key, row

    def key(self, key: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            found = store.key_by_hash(conn, self._hash(key))
            if found is None or found["revoked_at"] is not None:
                raise BadApiKey()
            found["usage"] = store.usage(conn, found["id"])
        return found

    def revoke_key(self, key: str) -> None:
        found = self.key(key)
        with self.db.platform() as conn:
            store.revoke_key(conn, found["id"], self.clock.now())

    def admit(self, key: str | None, client: str) -> Caller:
        """Checks the key (if any) and the caller's rate limit, and counts a keyed request in
        its day's usage. Raises BadApiKey or RateLimited (with the seconds to wait)."""
        if key:
            with self.db.platform() as conn:
                found = store.key_by_hash(conn, self._hash(key))
                if found is None or found["revoked_at"] is not None:
                    raise BadApiKey()
                caller = Caller(found["id"], found["per_minute"])
                wait = self.limiter.admit(f"key:{caller.key_id}", caller.per_minute,
                                          time.monotonic())
                if wait:
                    raise RateLimited(wait)
                store.count_use(conn, found["id"], today_jst(self.clock), 1)
            return caller
        wait = self.limiter.admit(f"ip:{client}", self.anonymous_per_minute, time.monotonic())
        if wait:
            raise RateLimited(wait)
        return Caller(None, self.anonymous_per_minute)

    # Generated dataset: 地域・年齢別人口

    def generate_population(self, lgcode: str,
                            threshold: int = model.SUPPRESSION_THRESHOLD,
                            epsilon: float | None = None) -> Published:
        """Counts the registry by 町字 and age band (through the registry's service only),
        suppresses small cells and the cells that would give them away, and publishes the
        result as the next version of `{lgcode}-population-by-area-age`. Run by a schedule
        (`kiban opendata generate-population`), so as the system, not a staff member.
        With `epsilon`, the counts are released by the privacy service with differential
        privacy instead (no suppression), spending ε from its `opendata_population` budget."""
        if epsilon is not None:
            return self._generate_population_dp(lgcode, epsilon)
        if threshold < 2:
            raise invalid("threshold", "秘匿の閾値は2以上です。", "threshold: at least 2")
        schema = self.schema(POPULATION)
        counted = Registry(self.db, self.clock).population_by_town(lgcode)
        with self.db.platform() as conn:
            muni = store.municipality(conn, lgcode)
        if muni is None:
            raise NotFound("地方公共団体が見つかりません。", "No such municipality.")
        table = model.population_table(counted["counts"], threshold)
        rows = model.population_records(
            table, lgcode=lgcode, municipality=f"{muni['prefecture']}{muni['name']}",
            as_of=counted["as_of"], area_names=counted["towns"])
        csv_text = model.to_csv(schema.field_names, rows)
        checked = model.check_csv(schema, csv_text.encode("utf-8"), lgcode)
        if not checked.ok:  # the generator's own output must pass the schema like any upload
            raise UploadRejected(checked.problems)
        return self._store(lgcode, schema, checked, csv_text.encode("utf-8"), GENERATOR,
                           title=f"{muni['name']} 地域・年齢別人口(住民基本台帳から生成)",
                           notes=f"{counted['as_of']} 現在の住民基本台帳から町字・5歳階級・男女別に"
                                 f"集計。{threshold}人未満の区分と、それを合計から逆算できる区分は"
                                 "秘匿(空欄)。", filename="generated")

    def _generate_population_dp(self, lgcode: str, epsilon: float) -> Published:
        """地域・年齢別人口 from DP-noised counts (issue 9): every 町字 × band × sex cell gets
        discrete Laplace noise once; the margins (総数, 計, 全域) are sums of the noisy cells
        (post-processing, no further ε); a count below 0 is published as 0 (the schema's
        minimum), so only cells near 0 lean upwards. Nothing is suppressed: the noise is the
        protection, whatever an attacker knows or adds up."""
        with self.db.platform() as conn:
            muni = store.municipality(conn, lgcode)
        if muni is None:
            raise NotFound("地方公共団体が見つかりません。", "No such municipality.")
        schema = self.schema(POPULATION)
        released = Privacy(self.db, self.clock).population_for_open_data(lgcode, epsilon)
        table = model.population_table(released["counts"], threshold=1)  # nothing suppressed
        rows = model.population_records(
            table, lgcode=lgcode, municipality=f"{muni['prefecture']}{muni['name']}",
            as_of=released["as_of"], area_names=released["towns"])
        note = f"差分プライバシー(ε={released['epsilon']:.4g})"
        for row in rows:
            for sex in model.SEXES:
                row[sex] = max(0, int(row[sex]))
            row["備考"] = note
        csv_text = model.to_csv(schema.field_names, rows)
        checked = model.check_csv(schema, csv_text.encode("utf-8"), lgcode)
        if not checked.ok:
            raise UploadRejected(checked.problems)
        return self._store(
            lgcode, schema, checked, csv_text.encode("utf-8"), GENERATOR,
            title=f"{muni['name']} 地域・年齢別人口(住民基本台帳から生成・差分プライバシー)",
            notes=f"{released['as_of']} 現在の住民基本台帳から町字・5歳階級・男女別に集計し、"
                  f"差分プライバシーの雑音(離散ラプラス分布、ε={released['epsilon']:.4g}、"
                  f"標準偏差 約{released['noise_stddev']:.2g}人)を加えた値。合計は雑音を加えた"
                  f"区分の和、負の値は0として公表。公表番号 {released['release_id']}。",
            filename="generated-dp")

    def schema(self, name: str) -> model.Schema:
        found = self.schemas.get(name)
        if found is None:
            raise NotFound("標準データセットが見つかりません。", f"No standard dataset {name!r}.")
        return found

    def check(self, lgcode: str, schema_name: str, data: bytes) -> model.Checked:
        """Validation only (a dry run): publishes nothing."""
        return model.check_csv(self.schema(schema_name), data, lgcode)

    def publish_csv(self, actor: StaffMember, lgcode: str, schema_name: str, data: bytes, *,
                    title: str = "", notes: str = "", filename: str = "") -> Published:
        actor.require(Permission.OPENDATA_PUBLISH, lgcode)
        schema = self.schema(schema_name)
        checked = model.check_csv(schema, data, lgcode)
        if not checked.ok:
            raise UploadRejected(checked.problems)
        return self._store(lgcode, schema, checked, data, actor.id, title=title, notes=notes,
                           filename=filename)

    def _store(self, lgcode: str, schema: model.Schema, checked: model.Checked, data: bytes,
               publisher: str, *, title: str, notes: str, filename: str) -> Published:
        now = self.clock.now()
        did = dataset_id(lgcode, schema.name)
        columns = [*schema.field_names, *checked.extra_columns]
        sha = hashlib.sha256(data).hexdigest()
        with self.db.tenant(lgcode) as conn:
            muni = store.municipality(conn, lgcode)
            if muni is None:
                raise NotFound("地方公共団体が見つかりません。", "No such municipality.")
            number = store.save_version(
                conn, dataset_id=did, lgcode=lgcode, schema_name=schema.name,
                title=title.strip()[:200] or f"{muni['name']} {schema.title}",
                notes=notes.strip() or schema.description, category=schema.category,
                version={"schema_version": schema.version, "columns": columns,
                         "extra_columns": checked.extra_columns, "encoding": checked.encoding,
                         "sha256": sha, "filename": filename[:200], "published_by": publisher},
                rows=checked.records, at=now)
            ledger.append(conn, lgcode, "opendata.publish", did,
                          {"version": number, "sha256": sha, "rows": len(checked.records)},
                          publisher, now)
        return Published(did, number, len(checked.records), checked.encoding,
                         checked.extra_columns)

    # Console: editing rows

    def current_table(self, lgcode: str, schema_name: str
                      ) -> tuple[list[str], list[dict[str, Any]], dict[str, Any] | None]:
        """The municipality's dataset of `schema_name` for editing: its columns (every
        standard column of the schema, then the own `x-` columns of the current version),
        the current version's records and the dataset with its history (None, no rows,
        before the first publication)."""
        schema = self.schema(schema_name)
        did = dataset_id(lgcode, schema.name)
        with self.db.platform() as conn:
            found = store.dataset(conn, did)
        if found is None:
            return schema.field_names, [], None
        meta, rows = self.records(did)
        found["versions"] = self.dataset(did)["versions"]
        return [*schema.field_names, *meta["extra_columns"]], rows, found

    @staticmethod
    def rows_csv(columns: list[str], rows: list[list[str]]) -> bytes:
        """Rows edited in a form, as the CSV an upload would be (UTF-8, header first), so
        they pass exactly the checks of an upload; row N of the problems is rows[N - 2]."""
        return model.to_csv(columns, [dict(zip(columns, r, strict=False)) for r in rows]
                            ).encode("utf-8")

    def publish_rows(self, actor: StaffMember, lgcode: str, schema_name: str,
                     columns: list[str], rows: list[list[str]], *, title: str = "",
                     notes: str = "") -> Published:
        """Publishes rows edited in the console as the next version: the same permission,
        checks and ledger entry as a CSV upload (nothing is published unless every row
        passes)."""
        actor.require(Permission.OPENDATA_PUBLISH, lgcode)
        return self.publish_csv(actor, lgcode, schema_name, self.rows_csv(columns, rows),
                                title=title, notes=notes, filename=CONSOLE_FILENAME)

    # Map outlines

    def outlines(self) -> dict[str, outlines.Outline]:
        """The bundled outlines, and those imported into `$KIBAN_OPENDATA_OUTLINES`."""
        cached: dict[str, outlines.Outline] | None = getattr(self, "_outlines", None)
        if cached is None:
            extra = os.environ.get(OUTLINES_ENV, "")
            cached = outlines.load([outlines.BUNDLED, *([Path(extra)] if extra else [])])
            self._outlines = cached
        return cached

    def map_outlines(self, records: list[dict[str, Any]]
                     ) -> list[tuple[str, bool, list[list[tuple[float, float]]]]]:
        """(name, approximate, rings) of the municipalities of the records: the stored
        outline, else one approximated from the records' own positions."""
        known = self.outlines()
        points: dict[str, list[tuple[float, float]]] = {}
        names: dict[str, str] = {}
        for r in records:
            code = str(r.get("lgcode") or r.get("全国地方公共団体コード") or "")
            if code and r.get("緯度") is not None and r.get("経度") is not None:
                points.setdefault(code, []).append((r["緯度"], r["経度"]))
                names.setdefault(code, str(r.get("org") or r.get("地方公共団体名") or code))
        out = []
        for code in sorted(points):
            found = known.get(code) or outlines.approximate(code, names[code], points[code])
            if found is not None:
                out.append((found.name, found.approximate, found.rings))
        return out

    # Public reads

    def dataset(self, did: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            found = store.dataset(conn, did)
            if found is None:
                raise NotFound("データセットが見つかりません。", "Not found")
            found["versions"] = store.versions(conn, did)
        return found

    def search(self, **kwargs: Any) -> tuple[int, list[dict[str, Any]]]:
        with self.db.platform() as conn:
            count, found = store.search(conn, **kwargs)
            histories = store.versions_of(conn, [d["id"] for d in found])
            for d in found:
                d["versions"] = histories[d["id"]]
        return count, found

    @property
    def point_schemas(self) -> set[str]:
        """Schemas whose records have a position (緯度 and 経度): map and GeoJSON."""
        return {s.name for s in self.schemas.values()
                if {"緯度", "経度"} <= set(s.field_names)}

    def json_records(self, did: str, version: int | None = None) -> dict[str, Any]:
        meta, rows = self.records(did, version)
        return {"dataset": did, "version": meta["version"],
                "schema_version": meta["schema_version"], "fields": meta["columns"],
                "records": [{c: r.get(c) for c in meta["columns"]} for r in rows]}

    def geojson(self, did: str, version: int | None = None) -> dict[str, Any]:
        found = self.dataset(did)
        if found["schema_name"] not in self.point_schemas:
            raise NotFound("このデータセットには位置情報がありません。",
                           "This dataset has no positions (緯度, 経度).")
        meta, rows = self.records(did, version)
        return {**model.to_geojson(rows, meta["columns"]), "name": did,
                "x-version": meta["version"]}

    def find_records(self, *, text: str = "", lgcode: str = "", schema: str = "",
                     date_from: str = "", date_to: str = "", near: tuple[float, float] | None = None,
                     km: float = 1.0, limit: int = 100) -> list[dict[str, Any]]:
        """Records across municipalities (current versions): words, town, dataset schema,
        events overlapping a date range, facilities within `km` of `near` (nearest first,
        each with `distance_km`)."""
        box = model.bounding_box(near[0], near[1], km) if near else None
        with self.db.platform() as conn:
            found = store.find_records(
                conn, words=text.split(), lgcodes=[lgcode] if lgcode else None,
                schemas=[schema] if schema else None, date_from=date_from or None,
                date_to=date_to or None, box=box, limit=limit if near is None else limit * 20)
        if near is None:
            return found
        for r in found:
            r["distance_km"] = round(model.distance_km(near[0], near[1], r["緯度"], r["経度"]), 3)
        return sorted((r for r in found if r["distance_km"] <= km),
                      key=lambda r: r["distance_km"])[:limit]

    def record(self, did: str, row: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """One record of the current version, and its dataset."""
        found = self.dataset(did)
        _, rows = self.records(did)
        for r in rows:
            if r["_id"] == row:
                return found, r
        raise NotFound("レコードが見つかりません。", "Not found")

    def dcat_catalog(self, base: str) -> dict[str, Any]:
        count, _ = self.search(limit=0)
        _, found = self.search(limit=count, order=[("name", False)])
        return dcat.catalog(found, base, self.point_schemas)

    def dcat_dataset(self, did: str, base: str) -> dict[str, Any]:
        found = self.dataset(did)
        return dcat.document(dcat.dataset(found, base, point_data=found["schema_name"]
                                          in self.point_schemas))

    def names(self, limit: int, offset: int) -> list[str]:
        with self.db.platform() as conn:
            return store.all_names(conn, limit, offset)

    def organizations(self) -> list[dict[str, Any]]:
        with self.db.platform() as conn:
            return store.organizations(conn)

    def organization(self, lgcode: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            found = store.municipality(conn, lgcode)
            if found is None:
                raise NotFound("組織が見つかりません。", "Not found")
            orgs = {o["lgcode"]: o for o in store.organizations(conn)}
        found["count"] = orgs.get(lgcode, {}).get("count", 0)
        return found

    def records(self, did: str, version: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A version's metadata (default: the current one) and its records."""
        with self.db.platform() as conn:
            found = store.dataset(conn, did)
            if found is None:
                raise NotFound("データセットが見つかりません。", "Not found")
            history = {v["version"]: v for v in store.versions(conn, did)}
            number = version or found["current_version"]
            if number not in history:
                raise NotFound("版が見つかりません。", "Not found")
            return history[number], store.records(conn, did, number)

    def version(self, did: str, version: int | None = None) -> dict[str, Any]:
        """A version's metadata (default: the current one)."""
        with self.db.platform() as conn:
            return self._version(conn, did, version)

    @staticmethod
    def _version(conn: Any, did: str, version: int | None) -> dict[str, Any]:
        found = store.dataset(conn, did)
        if found is None:
            raise NotFound("データセットが見つかりません。", "Not found")
        history = {v["version"]: v for v in store.versions(conn, did)}
        number = version or found["current_version"]
        if number not in history:
            raise NotFound("版が見つかりません。", "Not found")
        return history[number]

    def search_records(self, did: str, meta: dict[str, Any], **query: Any
                       ) -> tuple[int, list[dict[str, Any]]]:
        """One version's records, filtered, sorted and paged in the database."""
        with self.db.platform() as conn:
            return store.search_records(conn, did, meta["version"], columns=meta["columns"],
                                        **query)

    def csv(self, did: str, version: int | None = None) -> str:
        meta, rows = self.records(did, version)
        return model.to_csv(meta["columns"], rows)

