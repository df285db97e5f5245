"""The exchange hub: members, codes, the permission table, the exchange itself and the log.

One `Hub` per process. Appends to the Merkle log are serialised by a lock and group-committed
(the entries of concurrent exchanges in one transaction), and the tree of leaf hashes is kept
in memory (rebuilt from `linkage_log` on start), so one process writes the log: the
in-process hub of `kiban serve`, or `kiban linkage serve`, not both on one database.

Data providers inside the deployment (a municipality's registry; the tax provider to come)
are `LocalProvider`s registered by item; outside agencies are reached over HTTP at their
registered endpoint. Either way the provider sees only its own code for the person.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.core.clock import Clock
from kiban.core.errors import FieldError, Forbidden, KibanError, NotFound, ValidationFailed, invalid
from kiban.identity import testca
from kiban.linkage import merkle, model, protocol, store
from kiban.linkage.model import Refusal
from kiban.platform import db as platform_db
from kiban.platform.auth import Permission, Role, StaffMember
from kiban.platform.db import Database, switch_tenant
from kiban.platform.settings import PROJECT_ROOT, Settings, UnsafeConfiguration
from kiban.registry.service import Registry

DEV_LINKAGE_SECRET = "kiban-linkage-dev-secret-not-for-production"  # noqa: S105 - refused in production
HUB_MEMBER = protocol.HUB_MEMBER
WINDOW = timedelta(minutes=5)
RULES_TTL = 5.0  # seconds between checks for a newer permission table
MAX_CACHED_CODES = 200_000
_INSERT_LOG = store.linkage_log.insert()
_INSERT_RESIDENT_EXCHANGE = store.linkage_resident_exchanges.insert()


@dataclass(frozen=True)
class LinkageConfig:
    secret: bytes
    hub_key: ed25519.Ed25519PrivateKey
    hub_certificate: str | None  # PEM; None: issue one from the test CA (dev and test)
    anchors: list[x509.Certificate]
    ca_dir: Path | None  # the test CA that issues member certificates (dev and test only)
    window: timedelta = WINDOW
    max_bytes: int = protocol.MAX_MESSAGE_BYTES

    @classmethod
    def from_env(cls, mode: str, env: Mapping[str, str] | None = None) -> LinkageConfig:
        """KIBAN_LINKAGE_SECRET (the code-derivation key), KIBAN_LINKAGE_KEY_DIR (hub.key.pem,
        hub.crt.pem) and KIBAN_LINKAGE_TRUST_ANCHORS (PEM file of the CAs that certify
        members). Production mode requires all three and never falls back to a default."""
        env = os.environ if env is None else env
        secret = env.get("KIBAN_LINKAGE_SECRET", "")
        key_dir = env.get("KIBAN_LINKAGE_KEY_DIR", "")
        anchors_file = env.get("KIBAN_LINKAGE_TRUST_ANCHORS", "")
        if mode == "production":
            if len(secret) < 32 or secret == DEV_LINKAGE_SECRET:
                raise UnsafeConfiguration("KIBAN_LINKAGE_SECRET must be set to a random value of at least "
                                          "32 characters in production mode")
            if not key_dir or not anchors_file:
                raise UnsafeConfiguration("KIBAN_LINKAGE_KEY_DIR and KIBAN_LINKAGE_TRUST_ANCHORS are required "
                                          "in production mode")
        secret_bytes = (secret or DEV_LINKAGE_SECRET).encode()
        if key_dir:
            base = Path(key_dir)
            try:
                hub_key = protocol.load_key((base / "hub.key.pem").read_bytes())
                hub_pem = (base / "hub.crt.pem").read_text()
                matches = protocol.public_pem(protocol.certificate_key(hub_pem)) == \
                    protocol.public_pem(hub_key.public_key())
            except (OSError, ValueError, TypeError) as exc:
                raise UnsafeConfiguration(
                    f"KIBAN_LINKAGE_KEY_DIR: hub.key.pem (an Ed25519 private key) and hub.crt.pem "
                    f"(its certificate) cannot be read ({type(exc).__name__})") from None
            if not matches:
                raise UnsafeConfiguration("KIBAN_LINKAGE_KEY_DIR: hub.crt.pem does not certify the "
                                          "key in hub.key.pem")
            certificate: str | None = hub_pem
        else:
            hub_key, certificate = protocol.derived_key(secret_bytes, HUB_MEMBER), None
        ca_dir: Path | None = None
        if mode != "production":
            directory = env.get("KIBAN_TEST_CA_DIR") or (
                tempfile.mkdtemp(prefix="kiban-linkage-ca-") if mode == "test"
                else str(PROJECT_ROOT / "var" / "test-ca"))
            ca_dir = Path(directory)
        anchors: list[x509.Certificate] = []
        if anchors_file:
            try:
                anchors = x509.load_pem_x509_certificates(Path(anchors_file).read_bytes())
            except (OSError, ValueError) as exc:
                raise UnsafeConfiguration(
                    f"KIBAN_LINKAGE_TRUST_ANCHORS: no CA certificates can be read from it "
                    f"({type(exc).__name__})") from None
        return cls(secret_bytes, hub_key, certificate, anchors, ca_dir)


@dataclass(frozen=True)
class Member:
    id: str
    kind: str
    name: str
    lgcode: str | None
    endpoint: str
    certificate: str
    status: str
    key: ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class Answer:
    """The hub's signed answer: HTTP status, body and headers."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class LocalProvider(Protocol):
    """A data provider inside this deployment, for the items it registers. `resident_id` is
    the municipality's own resident, found from the provider's code; None when the code is
    not one of the municipality's residents. Returns ("ok", data) or ("not-found", {})."""

    def __call__(self, lgcode: str, resident_id: str | None, item: str,
                 params: dict[str, Any]) -> tuple[str, dict[str, Any]]: ...


def system_actor(lgcode: str) -> StaffMember:
    """The hub acting for a municipality's registry: read-only, never the 個人番号; the
    registry's access log names it as `linkage`."""
    return StaffMember(id="linkage", lgcode=lgcode, username="system:linkage", display_name="情報連携",
                       department="", roles=frozenset({Role.COUNTER_CLERK}))


class RegistryProvider:
    """The resident registry as the first provider (jumin/...), through kiban.registry.service
    only. Neither the 個人番号 nor the 住民票コード is ever part of what it provides."""

    ITEMS: ClassVar[dict[str, str]] = {"jumin/household-composition": "世帯構成(世帯員の氏名・続柄・生年月日・性別)",
             "jumin/residence": "住所と住民となった年月日"}

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, lgcode: str, resident_id: str | None, item: str,
                 params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if resident_id is None:
            return "not-found", {}
        actor = system_actor(lgcode)
        try:
            resident = self.registry.get(actor, lgcode, resident_id)
        except NotFound:
            return "not-found", {}
        if resident.get("status") != "active":
            return "not-found", {}
        address = (resident.get("address") or {}).get("text", "")
        if item == "jumin/residence":
            return "ok", {"address": address, "resident_since": resident.get("resident_since"),
                          "address_since": resident.get("address_since")}
        household = self.registry.household(actor, lgcode, resident["household_id"])
        return "ok", {"address": address, "members": [
            {"name": m["full_name"], "kana": m["full_kana"], "relationship": m["relationship"],
             "birth_date": m["birth_date"], "sex": m["sex"]}
            for m in household["members"] if m.get("status") == "active"]}


class ProviderConnections:
    """Keep-alive HTTP/1.1 connections to outside providers, a few idle ones per endpoint, on
    the standard library's http.client: httpx's client cost about 0.7 ms of CPU per call more
    (cProfile of the exchange, docs/performance.md). Thread-safe: a connection is used by one
    exchange at a time."""

    MAX_IDLE = 32  # per endpoint

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def _open(self, key: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], limit: int) -> tuple[int, bytes, str]:
        """(status, body cut at `limit` bytes, the X-Kiban-Signature header). Raises OSError or
        http.client.HTTPException when the provider cannot be reached or answers garbage. A
        kept-alive connection the provider has closed meanwhile is retried once on a new one."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise http.client.InvalidURL(url)
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            reused = conn is not None
            if conn is None:
                conn = self._open(key)
            try:
                conn.request("POST", path, body=body, headers=dict(headers))
                response = conn.getresponse()
                data = response.read(limit + 1)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:
                    continue  # closed by the provider while idle: once more on a fresh connection
                raise
            except BaseException:
                conn.close()
                raise
            if len(data) > limit or response.will_close or not response.isclosed():
                conn.close()
            else:
                with self._lock:
                    idle = self._idle.setdefault(key, [])
                    if len(idle) < self.MAX_IDLE:
                        idle.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()
            return response.status, data[:limit], response.getheader(protocol.SIGNATURE_HEADER) or ""

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for conn in connections:
                conn.close()


@dataclass
class _LogWrite:
    """One log entry waiting for the group commit (`Hub._log`)."""

    log: dict[str, Any]  # the linkage_log row but its leaf_index
    leaf: bytes
    exchange: dict[str, Any] | None  # the linkage_resident_exchanges row but its leaf_index
    index: int = -1
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Cache:
    members: dict[str, Member] = field(default_factory=dict)
    services: set[tuple[str, str]] = field(default_factory=set)
    rules: list[model.Rule] = field(default_factory=list)
    version: int = 0
    rules_checked: float = 0.0
    members_checked: float = 0.0
    codes: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (member, code) -> person, home
    issued: set[tuple[str, str]] = field(default_factory=set)  # (member, person) with a code row
    residents: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (lgcode, person)
    seen: dict[tuple[str, str], datetime] = field(default_factory=dict)  # replay cache
    local_codes: dict[tuple[str, str], str] = field(default_factory=dict)  # (lgcode, code) -> resident


class Hub:
    def __init__(self, settings: Settings, db: Database, clock: Clock, registry: Registry,
                 env: Mapping[str, str] | None = None) -> None:
        self.settings, self.db, self.clock, self.registry = settings, db, clock, registry
        self._env = env
        self._config: LinkageConfig | None = None
        self._lock = threading.RLock()
        self._tree: merkle.MerkleTree | None = None
        self._cache = _Cache()
        self._http = ProviderConnections()
        self._pending: list[_LogWrite] = []  # log entries waiting for the next group commit
        self._pending_lock = threading.Lock()
        self._seen_lock = threading.Lock()
        self._hub_cert: str = ""
        registry_provider = RegistryProvider(registry)
        # item -> provider. The tax domain registers zeimu/... here (see docs/linkage.md).
        self.local_providers: dict[str, LocalProvider] = dict.fromkeys(RegistryProvider.ITEMS, registry_provider)
        self.local_descriptions: dict[str, str] = dict(RegistryProvider.ITEMS)

    # --- set-up ---------------------------------------------------------------------------

    @property
    def config(self) -> LinkageConfig:
        if self._config is None:
            self._config = LinkageConfig.from_env(self.settings.mode, self._env)
        return self._config

    @property
    def started(self) -> bool:
        return self._tree is not None

    def check_configuration(self) -> None:
        """Reads the hub's configuration now, without touching the database: in production
        mode raises UnsafeConfiguration, naming the variable, when the secret, the hub's key and
        certificate or the trust anchors are missing or unusable. Called when the application
        starts, so a hub without its secrets never serves a request. (In dev and test mode the
        configuration is read on first use: it may create a scratch test CA.)"""
        if self.settings.mode == "production":
            _ = self.config

    def start(self) -> None:
        """Loads configuration, members, the table and the tree (done on first use anyway)."""
        self._ensure()

    def _ensure(self) -> merkle.MerkleTree:
        if self._tree is not None:
            return self._tree
        with self._lock:
            if self._tree is not None:
                return self._tree
            config = self.config
            now = self.clock.now()
            with self.db.platform() as conn:
                leaves = store.leaf_hashes(conn)
                since = now - 2 * config.window
                self._cache.seen = dict.fromkeys(store.recent_request_ids(conn, since), now)
                hub_row = store.member(conn, HUB_MEMBER)
            if hub_row is not None and protocol.public_pem(protocol.certificate_key(hub_row["certificate"])) \
                    == protocol.public_pem(config.hub_key.public_key()):
                self._hub_cert = config.hub_certificate or hub_row["certificate"]
            else:
                self._hub_cert = config.hub_certificate or self._issue(HUB_MEMBER, "Kiban 情報連携基盤",
                                                                       config.hub_key.public_key())
                self._save_member(HUB_MEMBER, "hub", "Kiban 情報連携基盤", None, "", self._hub_cert)
            self._reload_members(force=True)
            self._reload_rules(force=True)
            self._tree = merkle.MerkleTree(leaves)
            return self._tree

    def _anchors(self) -> list[x509.Certificate]:
        config = self.config
        anchors = list(config.anchors)
        if config.ca_dir is not None:
            ca = testca.TestCA(config.ca_dir)
            if ca.exists():
                anchors.append(ca.root())
        return anchors

    def _issue(self, member: str, name: str, public_key: ed25519.Ed25519PublicKey) -> str:
        """A certificate from the test CA (dev and test only)."""
        config = self.config
        if config.ca_dir is None:
            raise invalid("certificate", "本番環境では証明書が必要です。",
                          "A certificate from the configured CA is required in production mode.")
        ca = testca.TestCA(config.ca_dir)
        now = self.clock.now()
        if not ca.exists():
            try:
                ca.init(now)
            except testca.TestCaError:
                pass  # created meanwhile by another process
        cert = ca.issue_agency_certificate(member, name, public_key, now)
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def hub_certificate(self) -> str:
        self._ensure()
        return self._hub_cert

    def _save_member(self, member_id: str, kind: str, name: str, lgcode: str | None, endpoint: str,
                     certificate: str) -> None:
        with self.db.platform() as conn:
            existing = store.member(conn, member_id)
            values = {"kind": kind, "name": name, "lgcode": lgcode, "endpoint": endpoint,
                      "certificate": certificate, "status": "active"}
            if existing is None:
                conn.execute(store.linkage_members.insert().values(id=member_id, joined_at=self.clock.now(),
                                                                    **values))
            else:
                conn.execute(store.linkage_members.update().where(store.linkage_members.c.id == member_id)
                             .values(**values))

    def _reload_members(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._cache.members_checked < 1.0:
            return
        self._cache.members_checked = now
        with self.db.platform() as conn:
            found = {}
            for r in store.members(conn):
                found[r["id"]] = Member(r["id"], r["kind"], r["name"], r["lgcode"], r["endpoint"],
                                        r["certificate"], r["status"], protocol.certificate_key(r["certificate"]))
            services = {(r["member_id"], r["item"]) for r in store.services(conn)}
        self._cache.members, self._cache.services = found, services

    def _reload_rules(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._cache.rules_checked < RULES_TTL:
            return
        self._cache.rules_checked = now
        with self.db.platform() as conn:
            version = store.current_version(conn)
            if version != self._cache.version or force:
                self._cache.rules = store.permission_rules(conn, version)
                self._cache.version = version

    # --- members --------------------------------------------------------------------------

    def register_member(self, member_id: str, kind: str, name: str, *, certificate: str | None = None,
                        endpoint: str = "", lgcode: str | None = None, items: Mapping[str, str] | None = None
                        ) -> dict[str, Any]:
        """Registers (or renews) a member subsystem with its certificate and declared items.
        Without a certificate, a subsystem run in this deployment gets its derived key
        certified by the test CA (dev and test only)."""
        self._ensure()
        errors = []
        if not model.MEMBER_RE.match(member_id) or member_id == HUB_MEMBER:
            errors.append(FieldError("id", "機関IDが不正です(INSTANCE/CLASS/MEMBER/SUBSYSTEM)。",
                                     "id must be INSTANCE/CLASS/MEMBER/SUBSYSTEM."))
        if kind not in model.MEMBER_KINDS:
            errors.append(FieldError("kind", "種別が不正です。", "kind must be municipality or agency."))
        if not name.strip() or len(name) > 200:
            errors.append(FieldError("name", "名称を入力してください。", "name is required."))
        if endpoint and not endpoint.startswith(("http://", "https://")):
            errors.append(FieldError("endpoint", "接続先URLが不正です。", "endpoint must be an http(s) URL."))
        for item in items or {}:
            if not model.ITEM_RE.match(item):
                errors.append(FieldError(f"items.{item}", "情報項目名が不正です。", "item must be AREA/ITEM."))
        if errors:
            raise ValidationFailed(errors)
        if certificate is None:
            if endpoint:
                raise invalid("certificate", "外部機関には証明書が必要です。",
                              "A member served over HTTP brings its own certificate.")
            certificate = self._issue(member_id, name, protocol.derived_key(self.config.secret, member_id).public_key())
        reason = protocol.check_certificate(certificate, self._anchors(), self.clock.now(), member_id)
        if reason:
            raise invalid("certificate", f"証明書を受け付けられません: {reason}", f"Certificate refused: {reason}")
        self._save_member(member_id, kind, name, lgcode, endpoint, certificate)
        if items:
            with self.db.platform() as conn:
                conn.execute(store.linkage_services.delete().where(store.linkage_services.c.member_id == member_id))
                conn.execute(store.linkage_services.insert(), [
                    {"member_id": member_id, "item": i, "description": d[:300]} for i, d in items.items()])
        self._reload_members(force=True)
        return self.member(member_id)

    def register_municipality(self, lgcode: str, name: str) -> dict[str, Any]:
        """The municipality as a member serving every in-process item (`local_providers`:
        jumin/... from the registry, and what other domains register) for its residents."""
        return self.register_member(model.municipality_member(lgcode), "municipality", f"{name} 住民記録",
                                    lgcode=lgcode, items=self.local_descriptions)

    def suspend_member(self, member_id: str) -> None:
        with self.db.platform() as conn:
            done = conn.execute(store.linkage_members.update().where(store.linkage_members.c.id == member_id)
                                .values(status="suspended")).rowcount
        if not done:
            raise NotFound("機関が見つかりません。", "Member not found.")
        self._reload_members(force=True)

    def member(self, member_id: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            row = store.member(conn, member_id)
            if row is None:
                raise NotFound("機関が見つかりません。", "Member not found.")
            items = [s["item"] for s in store.services(conn) if s["member_id"] == member_id]
        return {**self._public(row), "items": items}

    @staticmethod
    def _public(row: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "kind": row["kind"], "name": row["name"], "lgcode": row["lgcode"],
                "endpoint": row["endpoint"], "certificate": row["certificate"], "status": row["status"],
                "joined_at": row["joined_at"].isoformat() if row["joined_at"] else None}

    def members(self) -> list[dict[str, Any]]:
        self._ensure()
        with self.db.platform() as conn:
            items: dict[str, list[str]] = {}
            for s in store.services(conn):
                items.setdefault(s["member_id"], []).append(s["item"])
            return [{**self._public(r), "items": items.get(r["id"], [])} for r in store.members(conn)]

    def services(self) -> list[dict[str, Any]]:
        with self.db.platform() as conn:
            return store.services(conn)

    def member_key(self, member_id: str) -> ed25519.Ed25519PrivateKey:
        """The signing key of a subsystem run in this deployment (for the in-process client)."""
        return protocol.derived_key(self.config.secret, member_id)

    # --- the permission table -----------------------------------------------------------

    def publish_permissions(self, actor: StaffMember, rows: Sequence[Mapping[str, Any]],
                            note: str = "") -> dict[str, Any]:
        """Publishes a new version of the whole table (the previous versions stay readable)."""
        actor.require(Permission.PLATFORM_MANAGE)
        rules, errors = model.check_rules(rows)
        if errors:
            raise ValidationFailed(errors)
        with self.db.platform() as conn:
            version = store.current_version(conn) + 1
            store.publish(conn, version, rules, self.clock.now(), actor.username, note[:500])
        self._reload_rules(force=True)
        return self.permissions(version)

    def permissions(self, version: int | None = None) -> dict[str, Any]:
        with self.db.platform() as conn:
            version = store.current_version(conn) if version is None else version
            meta = next((v for v in store.versions(conn) if v["version"] == version), None)
            if meta is None and version != 0:
                raise NotFound("連携表のその版はありません。", "No such version of the permission table.")
            rules = store.permission_rules(conn, version)
        return {"version": version, "digest": model.table_digest(rules),
                "published_at": meta["published_at"].isoformat() if meta else None,
                "published_by": meta["published_by"] if meta else None, "note": meta["note"] if meta else "",
                "rules": [r.__dict__ for r in rules]}

    def permission_versions(self) -> list[dict[str, Any]]:
        with self.db.platform() as conn:
            return [{**v, "published_at": v["published_at"].isoformat()} for v in store.versions(conn)]

    # --- codes ----------------------------------------------------------------------------

    def enrol(self, member_id: str, lgcode: str, resident_id: str) -> str:
        """The member's code for a resident of `lgcode` (符号の取得): the municipality's registry
        gets its own code for the person at the same time. The code goes to that member only;
        the 住民票コード it derives from stays in the hub."""
        self._ensure()
        if member_id not in self._cache.members:
            raise NotFound("機関が見つかりません。", "Member not found.")
        jumin = model.municipality_member(lgcode)
        if jumin not in self._cache.members:
            raise NotFound("この団体は情報連携に参加していません。", "The municipality is not a member.")
        resident = self.registry.get(system_actor(lgcode), lgcode, resident_id)
        person = model.person_key(self.config.secret, resident["juminhyo_code"])
        now = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            if store.resident_person(conn, lgcode, person) is None:
                conn.execute(store.linkage_residents.insert().values(
                    lgcode=lgcode, person=person, resident_id=resident_id, enrolled_at=now,
                    code=model.agency_code(self.config.secret, jumin, person)))
            for member in dict.fromkeys((jumin, member_id)):
                self._record_code(conn, member, person, lgcode)
        return model.agency_code(self.config.secret, member_id, person)

    def _record_code(self, conn: Any, member: str, person: str, home: str) -> str:
        code = model.agency_code(self.config.secret, member, person)
        if (member, person) not in self._cache.issued:
            if not store.has_code(conn, member, person):
                conn.execute(store.linkage_codes.insert().values(
                    member_id=member, code=code, person=person, home_lgcode=home, issued_at=self.clock.now()))
            self._cache.issued.add((member, person))
        return code

    def _owner(self, member: str, code: str) -> tuple[str, str] | None:
        key = (member, code)
        found = self._cache.codes.get(key)
        if found is None:
            with self.db.platform() as conn:
                row = store.code_owner(conn, member, code)
            if row is None:
                return None
            if len(self._cache.codes) > MAX_CACHED_CODES:
                self._cache.codes.clear()
            found = self._cache.codes[key] = (row["person"], row["home_lgcode"])
        return found

    def _resident(self, lgcode: str, person: str) -> str | None:
        key = (lgcode, person)
        if key not in self._cache.residents:
            with self.db.tenant(lgcode) as conn:
                self._cache.residents[key] = store.resident_person(conn, lgcode, person)
        return self._cache.residents[key]

    # --- the exchange ---------------------------------------------------------------------

    def exchange(self, body: bytes, client: str | None, signature: str | None, *, truncated: bool = False) -> Answer:
        """One exchange, every step checked; refusals answered and logged alike. `truncated`:
        the transport stopped reading at the size limit."""
        tree = self._ensure()
        del tree
        config = self.config
        now = self.clock.now()
        # A message cut off at the size limit was never read whole: it has no hash to echo.
        digest = "" if truncated else model.request_hash(body)
        claimed = client if client and model.MEMBER_RE.match(client) else "-"
        ctx: dict[str, Any] = {"client": claimed, "request_hash": digest}

        def refuse(reason: Refusal, subject: tuple[str, str] | None = None) -> Answer:
            return self._answer_refusal(reason, ctx, subject, now)

        if truncated or len(body) > config.max_bytes:
            return refuse(Refusal.OVERSIZED)
        if not signature:
            return refuse(Refusal.UNSIGNED)
        member = self._cache.members.get(claimed)
        if member is None:
            self._reload_members()
            member = self._cache.members.get(claimed)
        if member is None or member.status != "active":
            return refuse(Refusal.UNKNOWN_MEMBER)
        if not protocol.verify(member.key, body, signature):
            return refuse(Refusal.BAD_SIGNATURE)
        request = model.parse_request(body)
        if request is None or request.client != claimed:
            return refuse(Refusal.MALFORMED)
        ctx.update(request_id=request.request_id, provider=request.provider, item=request.item,
                   procedure=request.procedure)
        if not model.is_fresh(request.issued_at, now, config.window):
            return refuse(Refusal.EXPIRED)
        with self._seen_lock:  # not the writer lock: a group commit in progress does not hold this up
            key = (request.client, request.request_id)
            if key in self._cache.seen:
                return refuse(Refusal.REPLAYED)
            self._cache.seen[key] = now
            if len(self._cache.seen) > 100_000:
                self._forget_old(now)
        owner = self._owner(request.client, request.subject)
        if owner is None:
            return refuse(Refusal.UNKNOWN_CODE)
        person, home = owner
        subject = (person, home)
        provider = self._cache.members.get(request.provider)
        if provider is None or provider.status != "active":
            return refuse(Refusal.UNKNOWN_PROVIDER, subject)
        if (provider.id, request.item) not in self._cache.services:
            return refuse(Refusal.UNKNOWN_ITEM, subject)
        self._reload_rules()
        rule = model.find_rule(self._cache.rules, request.client, request.provider, request.item,
                               request.procedure)
        if rule is None:
            return refuse(Refusal.NOT_PERMITTED, subject)
        ctx["legal_basis"] = rule.legal_basis
        if (provider.id, person) in self._cache.issued:
            provider_code = model.agency_code(config.secret, provider.id, person)
        else:
            with self.db.platform() as conn:
                provider_code = self._record_code(conn, provider.id, person, home)
        forwarded = protocol.forwarded_body(request, rule.legal_basis, provider_code, now)
        reply = self._call_provider(provider, forwarded)
        if reply is None:
            return refuse(Refusal.PROVIDER_FAILED, subject)
        reply_body, reply_signature, status = reply
        if status == "not-found":
            return refuse(Refusal.NOT_FOUND, subject)
        index = self._log(ctx, "provided", "", subject, now)
        return self._signed(200, {
            "protocol": model.PROTOCOL_VERSION, "request_id": request.request_id, "request_hash": digest,
            "status": "ok", "provider": provider.id, "item": request.item, "legal_basis": rule.legal_basis,
            "table_version": self._cache.version, "provider_response": reply_body.decode(),
            "provider_signature": reply_signature, "log": {"leaf_index": index}})

    def _forget_old(self, now: datetime) -> None:
        horizon = now - 2 * self.config.window
        self._cache.seen = {k: v for k, v in self._cache.seen.items() if v >= horizon}

    def _call_provider(self, provider: Member, forwarded: bytes) -> tuple[bytes, str, str] | None:
        """The provider's signed reply, checked: its signature, the echoed hash, its status."""
        hub_signature = protocol.sign(self.config.hub_key, forwarded)
        try:
            if provider.endpoint:
                _, reply_body, reply_signature = self._http.post(provider.endpoint, forwarded, {
                    protocol.CLIENT_HEADER: HUB_MEMBER, protocol.SIGNATURE_HEADER: hub_signature,
                    "Content-Type": "application/json"}, self.config.max_bytes * 64)
            else:
                reply_body, reply_signature = self._local(provider, forwarded)
        except (OSError, http.client.HTTPException, KibanError, ValueError):
            return None
        if not protocol.verify(provider.key, reply_body, reply_signature):
            return None
        try:
            reply = json.loads(reply_body)
        except ValueError:
            return None
        if (not isinstance(reply, dict) or reply.get("request_hash") != model.request_hash(forwarded)
                or reply.get("status") not in ("ok", "not-found")):
            return None
        return reply_body, reply_signature, str(reply["status"])

    def _local(self, provider: Member, forwarded: bytes) -> tuple[bytes, str]:
        """A provider served in this process: what an outside provider does, in-process."""
        message = json.loads(forwarded)
        handler = self.local_providers.get(message["item"])
        if handler is None or provider.lgcode is None:
            raise ValueError("no local provider for this item")
        key = (provider.lgcode, message["subject"])
        resident_id: str | None
        if key in self._cache.local_codes:
            resident_id = self._cache.local_codes[key]
        else:
            with self.db.tenant(provider.lgcode) as conn:
                resident_id = store.resident_of(conn, provider.lgcode, message["subject"])
            if resident_id is not None:  # a code once mapped never changes; an unknown one may appear
                self._cache.local_codes[key] = resident_id
        status, data = handler(provider.lgcode, resident_id, message["item"], message["params"])
        body = protocol.provider_body(forwarded, status, data)
        return body, protocol.sign(self.member_key(provider.id), body)

    def _answer_refusal(self, reason: Refusal, ctx: dict[str, Any], subject: tuple[str, str] | None,
                        now: datetime) -> Answer:
        status, ja, en = model.refusal_text(reason)
        index = self._log(ctx, "not-found" if reason is Refusal.NOT_FOUND else "refused", reason.value,
                          subject, now)
        return self._signed(status, {
            "protocol": model.PROTOCOL_VERSION, "request_id": ctx.get("request_id", ""),
            "request_hash": ctx["request_hash"], "status": "refused",
            "error": {"code": reason.value, "title_ja": ja, "title_en": en}, "log": {"leaf_index": index}},
            error=reason.value)

    def _signed(self, status: int, data: dict[str, Any], error: str | None = None) -> Answer:
        body = model.canonical(data)
        headers = {protocol.SIGNATURE_HEADER: protocol.sign(self.config.hub_key, body),
                   protocol.REQUEST_HASH_HEADER: str(data["request_hash"]),
                   protocol.REQUEST_ID_HEADER: str(data.get("request_id", ""))}
        if error:
            headers[protocol.ERROR_HEADER] = error
        return Answer(status, body, headers)

    # --- the log --------------------------------------------------------------------------

    def _log(self, ctx: dict[str, Any], outcome: str, reason: str, subject: tuple[str, str] | None,
             now: datetime) -> int:
        config = self.config
        request_id = str(ctx.get("request_id", ""))
        commitment = (model.subject_commitment(config.secret, subject[0], ctx["client"], request_id)
                      if subject else "")
        entry = model.Entry(
            at=now.astimezone(UTC).isoformat(), request_id=request_id, client=ctx["client"],
            provider=str(ctx.get("provider", "")), item=str(ctx.get("item", "")),
            procedure=str(ctx.get("procedure", "")), legal_basis=str(ctx.get("legal_basis", "")),
            outcome=outcome, reason=reason, request_hash=ctx["request_hash"], subject=commitment,
            table_version=self._cache.version)
        leaf_input = entry.leaf_input()
        leaf = merkle.leaf_hash(leaf_input)
        resident = self._resident(subject[1], subject[0]) if subject else None
        write = _LogWrite(
            log={"leaf_hash": leaf.hex(), "entry": leaf_input.decode(), "at": now, "client": entry.client,
                 "provider": entry.provider, "request_id": request_id[:64], "outcome": outcome,
                 "reason": reason},
            leaf=leaf,
            exchange={"lgcode": subject[1], "resident_id": resident, "at": now, "client": entry.client,
                      "provider": entry.provider, "item": entry.item, "procedure": entry.procedure,
                      "legal_basis": entry.legal_basis, "outcome": outcome, "reason": reason}
            if subject and resident else None)
        tree = self._ensure()
        if self._in_unit_of_work():
            return self._log_in_unit(tree, write)
        # Group commit: the entry joins the queue; whoever holds the writer lock next writes
        # every queued entry in one transaction (this one's, or an earlier thread's that took
        # it along), and each exchange answers only once its entry is committed.
        with self._pending_lock:
            self._pending.append(write)
        with self._lock:
            if not write.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit(tree, batch)
        if write.error is not None:
            raise write.error
        return write.index

    def _in_unit_of_work(self) -> bool:
        """True when the caller (another domain's service through the in-process client) runs
        the exchange inside its own unit of work on this database."""
        ambient = platform_db._AMBIENT.get()  # (private: kiban.platform.db has no accessor)
        return ambient is not None and ambient[0] is self.db

    def _log_in_unit(self, tree: merkle.MerkleTree, write: _LogWrite) -> int:
        """The entry alone, in the caller's unit of work as before group commit: a separate
        transaction would wait on the caller's own write lock on SQLite."""
        with self._lock:
            index = tree.size
            home = write.exchange["lgcode"] if write.exchange is not None else None
            with (self.db.tenant(home) if home else self.db.platform()) as conn:
                conn.execute(_INSERT_LOG, {**write.log, "leaf_index": index})
                if write.exchange is not None:
                    conn.execute(_INSERT_RESIDENT_EXCHANGE, {**write.exchange, "leaf_index": index})
            tree.append(write.leaf)
        return index

    def _commit(self, tree: merkle.MerkleTree, batch: list[_LogWrite]) -> None:
        """Writes queued entries in one transaction and appends them to the tree (under the
        writer lock). On failure none is logged and each waiting exchange raises the error."""
        logs: list[dict[str, Any]] = []
        exchanges: dict[str, list[dict[str, Any]]] = {}
        for n, w in enumerate(batch):
            w.index = tree.size + n
            logs.append({**w.log, "leaf_index": w.index})
            if w.exchange is not None:
                exchanges.setdefault(w.exchange["lgcode"], []).append({**w.exchange, "leaf_index": w.index})
        try:
            # Its own transaction, never a caller's unit of work: a log entry is final once written.
            with self.db.engine.begin() as conn:
                # Prebuilt statements with parameters: no statement building per exchange.
                conn.execute(_INSERT_LOG, logs)
                for lgcode, rows in exchanges.items():
                    switch_tenant(conn, lgcode)  # resident exchanges are under row-level security
                    conn.execute(_INSERT_RESIDENT_EXCHANGE, rows)
        except BaseException as exc:
            for w in batch:
                w.index, w.error, w.done = -1, exc, True
            return
        for w in batch:
            tree.append(w.leaf)
            w.done = True

    def sth(self) -> dict[str, Any]:
        """CT `get-sth`: the current tree head, signed (a new head only when the tree grew)."""
        tree = self._ensure()
        with self._lock:
            size = tree.size
            with self.db.platform() as conn:
                head = store.latest_head(conn)
                if head is None or int(head["tree_size"]) != size:
                    root = tree.root(size)
                    timestamp = int(self.clock.now().timestamp() * 1000)
                    if head is not None:
                        timestamp = max(timestamp, int(head["timestamp"]))
                    signature = self.config.hub_key.sign(protocol.tree_head_input(timestamp, size, root))
                    head = {"tree_size": size, "timestamp": timestamp, "root_hash": root.hex(),
                            "signature": protocol.digitally_signed(signature)}
                    if size:
                        conn.execute(store.linkage_tree_heads.insert().values(**head))
        return {"tree_size": int(head["tree_size"]), "timestamp": int(head["timestamp"]),
                "sha256_root_hash": base64.b64encode(bytes.fromhex(head["root_hash"])).decode(),
                "tree_head_signature": head["signature"]}

    def _size_arg(self, tree_size: int, name: str) -> None:
        if tree_size < 0 or tree_size > self._ensure().size:
            raise invalid(name, "木のサイズが範囲外です。", f"{name} is out of range.")

    def proof_by_hash(self, leaf_hash_b64: str, tree_size: int) -> dict[str, Any]:
        """CT `get-proof-by-hash`."""
        try:
            leaf = base64.b64decode(leaf_hash_b64, validate=True)
        except ValueError as exc:
            raise invalid("hash", "ハッシュが不正です(base64)。", "hash must be base64.") from exc
        self._size_arg(tree_size, "tree_size")
        with self.db.platform() as conn:
            index = store.index_of_hash(conn, leaf.hex())
        if index is None or index >= tree_size:
            raise NotFound("その葉はこの木にありません。", "No such leaf in a tree of this size.")
        return {"leaf_index": index,
                "audit_path": [base64.b64encode(h).decode() for h in self._ensure().inclusion_proof(index, tree_size)]}

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """CT `get-sth-consistency`."""
        self._size_arg(second, "second")
        if first < 0 or first > second:
            raise invalid("first", "first は 0 以上 second 以下です。", "first must be between 0 and second.")
        return {"consistency": [base64.b64encode(h).decode()
                                for h in self._ensure().consistency_proof(first, second)]}

    def entries(self, start: int, end: int) -> dict[str, Any]:
        """CT `get-entries` (at most 1000): leaf_input is the entry's canonical JSON, base64."""
        if start < 0 or end < start:
            raise invalid("start", "範囲が不正です。", "start and end must satisfy 0 <= start <= end.")
        end = min(end, start + 999)
        with self.db.platform() as conn:
            found = store.entries(conn, start, end)
        return {"entries": [{"leaf_input": base64.b64encode(r["entry"].encode()).decode(), "extra_data": ""}
                            for r in found]}

    def verify_log(self) -> list[str]:
        """Recomputes every leaf hash from its stored entry and the root of the latest published
        head from the stored leaves: the problems found (empty: the log is intact)."""
        problems = []
        with self.db.platform() as conn:
            rows = store.rows(conn, store.linkage_log.select().order_by(store.linkage_log.c.leaf_index))
            head = store.latest_head(conn)
        tree = merkle.MerkleTree()
        for expected, row in enumerate(rows):
            if int(row["leaf_index"]) != expected:
                problems.append(f"leaf {expected} is missing")
                break
            leaf = merkle.leaf_hash(row["entry"].encode())
            if leaf.hex() != row["leaf_hash"]:
                problems.append(f"leaf {expected}: the entry does not match its hash")
            tree.append(leaf)
        if head is not None:
            size = int(head["tree_size"])
            if size > tree.size:
                problems.append(f"the published head covers {size} leaves; {tree.size} are stored")
            elif tree.root(size).hex() != head["root_hash"]:
                problems.append(f"the root of the first {size} leaves differs from the published head")
            sth = {"tree_size": size, "timestamp": head["timestamp"], "tree_head_signature": head["signature"],
                   "sha256_root_hash": base64.b64encode(bytes.fromhex(head["root_hash"])).decode()}
            if not protocol.verify_tree_head(self.config.hub_key.public_key(), sth):
                problems.append("the published head's signature does not verify")
        return problems

    # --- views ----------------------------------------------------------------------------

    def exchanges_of_resident(self, lgcode: str, resident_id: str) -> dict[str, Any]:
        """Every exchange about the resident (やりとり履歴), each with its log entry and an
        inclusion proof against the current signed tree head. For the resident's own view."""
        sth = self.sth()
        size = sth["tree_size"]
        with self.db.tenant(lgcode) as conn:
            found = store.resident_exchanges(conn, lgcode, resident_id)
        indexes = [int(r["leaf_index"]) for r in found]
        with self.db.platform() as conn:
            entries = {int(r["leaf_index"]): r["entry"] for r in store.entries(conn, min(indexes), max(indexes))
                       if int(r["leaf_index"]) in set(indexes)} if indexes else {}
        root = base64.b64decode(sth["sha256_root_hash"])
        tree = self._ensure()
        out = []
        for r in found:
            index = int(r["leaf_index"])
            entry = entries.get(index, "")
            leaf = merkle.leaf_hash(entry.encode())
            proof = tree.inclusion_proof(index, size) if index < size else []
            out.append({
                "at": r["at"].isoformat(), "client": r["client"], "provider": r["provider"], "item": r["item"],
                "procedure": r["procedure"], "legal_basis": r["legal_basis"], "outcome": r["outcome"],
                "reason": r["reason"], "leaf_index": index, "entry": entry,
                "leaf_hash": base64.b64encode(leaf).decode(),
                "audit_path": [base64.b64encode(h).decode() for h in proof],
                "verified": index < size and merkle.verify_inclusion(index, size, leaf, proof, root)})
        return {"sth": sth, "exchanges": out}

    def resident_exchanges(self, actor: StaffMember, lgcode: str, resident_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        return self.exchanges_of_resident(lgcode, resident_id)

    def overview(self, actor: StaffMember, days: int = 14) -> dict[str, Any]:
        """Staff view: volumes per member and day, refused exchanges. A municipality's staff
        see the exchanges of their own subsystems; the platform administrator sees all."""
        if not (actor.can(Permission.PLATFORM_MANAGE) or actor.can(Permission.DASHBOARD)):
            raise Forbidden()
        self._ensure()
        own: list[str] | None = None
        if not actor.can(Permission.PLATFORM_MANAGE):
            own = [m.id for m in self._cache.members.values() if m.lgcode and m.lgcode == actor.lgcode]
        since = self.clock.now() - timedelta(days=days)
        with self.db.platform() as conn:
            volumes = store.volumes(conn, since)
            refused = store.refused(conn, 50, own)
        if own is not None:
            volumes = [v for v in volumes if v["client"] in own]
        shown = []
        for r in refused:
            entry = json.loads(r["entry"])
            shown.append({"leaf_index": r["leaf_index"], "at": r["at"].isoformat(), "client": r["client"],
                          "provider": r["provider"], "item": entry["item"], "procedure": entry["procedure"],
                          "reason": r["reason"]})
        return {"volumes": volumes, "refused": shown,
                "tree_size": self._ensure().size}


def parse_rules_file(text: str) -> list[dict[str, Any]]:
    """A permission table as JSON: a list of rules, or {"rules": [...]}."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise invalid("rules", "JSON として読めません。", "The file is not JSON.") from exc
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise invalid("rules", "連携表は規則の一覧です。", "The table must be a list of rules.")
    return rules

