"""Open data use cases: publishing a standard dataset by CSV upload (validated in full,
nothing published until it passes; each publication a new version with history), and the
public reads behind the CKAN-compatible API."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from kiban.core.clock import Clock
from kiban.core.errors import FieldError, NotFound, ValidationFailed
from kiban.opendata import model, store
from kiban.platform import ledger
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database


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
        now = self.clock.now()
        did = dataset_id(lgcode, schema_name)
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
                         "sha256": sha, "filename": filename[:200], "published_by": actor.id},
                rows=checked.records, at=now)
            ledger.append(conn, lgcode, "opendata.publish", did,
                          {"version": number, "sha256": sha, "rows": len(checked.records)},
                          actor.id, now)
        return Published(did, number, len(checked.records), checked.encoding,
                         checked.extra_columns)

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
            for d in found:
                d["versions"] = store.versions(conn, d["id"])
        return count, found

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

    def csv(self, did: str, version: int | None = None) -> str:
        meta, rows = self.records(did, version)
        return model.to_csv(meta["columns"], rows)

