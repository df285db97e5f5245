"""Staff accounts, roles, server-side sessions, API tokens and login rate limiting.

Passwords are hashed with Argon2id. A session is a random token in a cookie; only its SHA-256
is stored. Each session has its own CSRF token, which every unsafe browser request echoes.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update

from kiban.core.errors import Conflict, FieldError, Forbidden, KibanError, ValidationFailed
from kiban.platform.db import Database
from kiban.platform.tables import login_failures, sessions, staff

SESSION_LIFETIME = timedelta(hours=8)
API_TOKEN_LIFETIME = timedelta(days=90)
_hasher = PasswordHasher()
# Verified against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("kiban-no-such-user")


class Role(StrEnum):
    COUNTER_CLERK = "counter_clerk"  # 窓口担当
    REGISTRY_SUPERVISOR = "registry_supervisor"  # 住民記録担当責任者
    TAX_OFFICER = "tax_officer"  # 税務担当
    PRIVACY_OFFICER = "privacy_officer"  # 個人情報保護担当
    MUNICIPALITY_ADMIN = "municipality_admin"  # 団体管理者
    PLATFORM_ADMIN = "platform_admin"  # 基盤管理者
    DIGITAL_OFFICER = "digital_officer"  # DX推進担当: 専門人材の募集・契約
    SPECIALIST = "specialist"  # 専門人材 (belongs to no municipality)
    STANDARD_MAINTAINER = "standard_maintainer"  # 標準仕様の管理者 (national, no municipality)


ROLE_LABELS = {
    Role.COUNTER_CLERK: "窓口担当", Role.REGISTRY_SUPERVISOR: "住民記録責任者",
    Role.TAX_OFFICER: "税務担当", Role.PRIVACY_OFFICER: "個人情報保護担当",
    Role.MUNICIPALITY_ADMIN: "団体管理者", Role.PLATFORM_ADMIN: "基盤管理者",
    Role.DIGITAL_OFFICER: "DX推進担当", Role.SPECIALIST: "専門人材",
    Role.STANDARD_MAINTAINER: "標準仕様管理者",
}
# Roles held by people who belong to no municipality.
UNAFFILIATED_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.SPECIALIST, Role.STANDARD_MAINTAINER})


class Permission(StrEnum):
    REGISTRY_READ = "registry.read"
    REGISTRY_NOTIFY = "registry.notify"  # changes by notification (届出)
    REGISTRY_AUTHORITY = "registry.authority"  # 職権, cancelling, import
    REGISTRY_EXPORT = "registry.export"
    MY_NUMBER_READ = "registry.my_number"
    CERTIFICATE_ISSUE = "certificate.issue"
    DASHBOARD = "dashboard"
    MUNICIPALITY_MANAGE = "municipality.manage"
    LEDGER_AUDIT = "ledger.audit"
    PLATFORM_MANAGE = "platform.manage"
    TALENT_MANAGE = "talent.manage"  # post needs, offer engagements, evaluate
    TALENT_PROFILE = "talent.profile"  # a specialist's own profile and engagements
    STANDARD_MAINTAIN = "standard.maintain"  # accept or reject change proposals
    OPENDATA_PUBLISH = "opendata.publish"  # publish the municipality's open datasets


GRANTS: dict[Role, set[Permission]] = {
    Role.COUNTER_CLERK: {Permission.REGISTRY_READ, Permission.REGISTRY_NOTIFY,
                         Permission.CERTIFICATE_ISSUE, Permission.DASHBOARD},
    Role.REGISTRY_SUPERVISOR: {Permission.REGISTRY_READ, Permission.REGISTRY_NOTIFY,
                               Permission.REGISTRY_AUTHORITY, Permission.REGISTRY_EXPORT,
                               Permission.MY_NUMBER_READ, Permission.CERTIFICATE_ISSUE,
                               Permission.DASHBOARD},
    Role.TAX_OFFICER: {Permission.DASHBOARD},
    Role.PRIVACY_OFFICER: {Permission.LEDGER_AUDIT, Permission.DASHBOARD},
    Role.MUNICIPALITY_ADMIN: {Permission.MUNICIPALITY_MANAGE, Permission.DASHBOARD,
                              Permission.LEDGER_AUDIT, Permission.TALENT_MANAGE,
                              Permission.OPENDATA_PUBLISH},
    Role.PLATFORM_ADMIN: {Permission.PLATFORM_MANAGE},
    Role.DIGITAL_OFFICER: {Permission.TALENT_MANAGE, Permission.DASHBOARD,
                           Permission.OPENDATA_PUBLISH},
    Role.SPECIALIST: {Permission.TALENT_PROFILE},
    Role.STANDARD_MAINTAINER: {Permission.STANDARD_MAINTAIN},
}


@dataclass(frozen=True)
class StaffMember:
    id: str
    lgcode: str | None
    username: str
    display_name: str
    department: str
    roles: frozenset[Role]

    def can(self, permission: Permission) -> bool:
        return any(permission in GRANTS[r] for r in self.roles)

    def require(self, permission: Permission, lgcode: str | None = None) -> None:
        """Refuses an action outside the staff member's roles or municipality."""
        if not self.can(permission):
            raise Forbidden("この操作の権限がありません。",
                            "Your roles do not allow this action.")
        if lgcode is not None and self.lgcode != lgcode:
            # Same answer as for a municipality that does not exist: nothing leaks.
            raise Forbidden("この地方公共団体のデータは扱えません。",
                            "You cannot act for this municipality.")


@dataclass(frozen=True)
class Session:
    staff: StaffMember
    csrf_token: str
    kind: str


class TooManyAttempts(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="ログインの試行が多すぎます。しばらくしてから再度お試しください。",
                         en="Too many login attempts. Try again later.", status=429,
                         code="rate-limited")


class BadCredentials(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="ユーザー名またはパスワードが違います。",
                         en="Wrong username or password.", status=401, code="unauthorized")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _member(row: object) -> StaffMember:
    r = row._mapping  # type: ignore[attr-defined]
    return StaffMember(id=r["id"], lgcode=r["lgcode"], username=r["username"],
                       display_name=r["display_name"], department=r["department"],
                       roles=frozenset(Role(x) for x in r["roles"].split(",") if x))


class Accounts:
    def __init__(self, db: Database, secret_key: str) -> None:
        self.db = db
        self._secret = secret_key.encode()

    def _attempt_key(self, username: str, client: str) -> str:
        """Failed logins are counted per username and client address, stored as a keyed hash
        so the table names neither."""
        return hmac.new(self._secret, f"{username.lower()}|{client}".encode(),
                        hashlib.sha256).hexdigest()

    def create(self, username: str, password: str, display_name: str, roles: builtins.list[str],
               lgcode: str | None, at: datetime, department: str = "") -> StaffMember:
        errors = []
        if not username or len(username) > 64 or not username.replace("-", "").replace(
                "_", "").replace(".", "").isalnum():
            errors.append(FieldError("username", "ユーザー名は英数字で入力してください。",
                                     "username must be letters and digits."))
        if len(password) < 12:
            errors.append(FieldError("password", "パスワードは12文字以上にしてください。",
                                     "password must be at least 12 characters."))
        if not display_name.strip() or len(display_name) > 100:
            errors.append(FieldError("display_name", "氏名を100文字以内で入力してください。",
                                     "display_name is required (at most 100 characters)."))
        try:
            parsed = [Role(r) for r in roles]
        except ValueError:
            parsed = []
            errors.append(FieldError("roles", "不明な役割です。", "unknown role."))
        if not parsed and not errors:
            errors.append(FieldError("roles", "役割を選んでください。", "roles are required."))
        unaffiliated = UNAFFILIATED_ROLES & set(parsed)
        if unaffiliated and (lgcode is not None or len(parsed) > len(unaffiliated)):
            errors.append(FieldError("roles", "基盤管理者・専門人材・標準仕様管理者は団体に属しません。",
                                     "platform admins, specialists and the standard's "
                                     "maintainers belong to no municipality."))
        if not unaffiliated and lgcode is None and parsed:
            errors.append(FieldError("lgcode", "所属団体を指定してください。",
                                     "municipality staff need an lgcode."))
        if errors:
            raise ValidationFailed(errors)
        member_id = uuid.uuid4().hex
        with self.db.platform() as conn:
            if conn.execute(select(staff.c.id).where(staff.c.username == username)).first():
                raise Conflict("このユーザー名は使われています。", "Username taken.",
                               field="username")
            conn.execute(insert(staff).values(
                id=member_id, lgcode=lgcode, username=username, display_name=display_name,
                department=department, password_hash=_hasher.hash(password),
                roles=",".join(r.value for r in parsed), active=True, created_at=at))
        return StaffMember(member_id, lgcode, username, display_name, department,
                           frozenset(parsed))

    def list(self, lgcode: str | None) -> list[StaffMember]:
        with self.db.platform() as conn:
            query = select(staff).where(staff.c.active.is_(True)).order_by(staff.c.username)
            query = query.where(staff.c.lgcode == lgcode) if lgcode else query
            return [_member(r) for r in conn.execute(query)]

    def login(self, username: str, password: str, client: str, at: datetime,
              attempts: int, window_seconds: int, kind: str = "browser") -> tuple[str, Session]:
        """Returns the session token (for the cookie) and the session."""
        key = self._attempt_key(username, client)
        since = at - timedelta(seconds=window_seconds)
        with self.db.platform() as conn:
            failures = conn.execute(select(func.count()).select_from(login_failures).where(
                login_failures.c.key == key, login_failures.c.at > since)).scalar_one()
            if failures >= attempts:
                raise TooManyAttempts()
            row = conn.execute(select(staff).where(staff.c.username == username,
                                                   staff.c.active.is_(True))).first()
            try:
                _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
                ok = row is not None
            except (VerificationError, InvalidHashError):
                ok = False
        if not ok or row is None:
            with self.db.platform() as conn:
                conn.execute(insert(login_failures).values(key=key, at=at))
            raise BadCredentials()
        with self.db.platform() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key == key))
        return self.open_session(_member(row), at, kind)

    def throttle(self, action: str, client: str, at: datetime, attempts: int,
                 window_seconds: int) -> None:
        """Counts an unauthenticated action (a sign-up) per client address, refusing more than
        `attempts` in the window: each costs a password hash and a row."""
        key = self._attempt_key(f"#{action}", client)
        with self.db.platform() as conn:
            recent = conn.execute(select(func.count()).select_from(login_failures).where(
                login_failures.c.key == key,
                login_failures.c.at > at - timedelta(seconds=window_seconds))).scalar_one()
            if recent >= attempts:
                raise TooManyAttempts()
            conn.execute(insert(login_failures).values(key=key, at=at))

    def open_session(self, member: StaffMember, at: datetime,
                     kind: str = "browser") -> tuple[str, Session]:
        # API tokens carry a prefix: secret scanners can spot a leaked one, and a token never
        # starts with "-", which command lines would take for an option.
        token = ("kbn_" if kind == "api" else "") + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        lifetime = SESSION_LIFETIME if kind == "browser" else API_TOKEN_LIFETIME
        with self.db.platform() as conn:
            conn.execute(insert(sessions).values(
                token_hash=_token_hash(token), staff_id=member.id, kind=kind, csrf_token=csrf,
                created_at=at, expires_at=at + lifetime))
        return token, Session(member, csrf, kind)

    def issue_api_token(self, username: str, at: datetime) -> str:
        with self.db.platform() as conn:
            row = conn.execute(select(staff).where(staff.c.username == username,
                                                   staff.c.active.is_(True))).first()
        if row is None:
            raise ValidationFailed([FieldError("username", "職員が見つかりません。",
                                               "No such staff member.")])
        return self.open_session(_member(row), at, kind="api")[0]

    def session(self, token: str, at: datetime) -> Session | None:
        with self.db.platform() as conn:
            row = conn.execute(
                select(sessions.c.csrf_token, sessions.c.kind, sessions.c.expires_at,
                       staff).join(staff, staff.c.id == sessions.c.staff_id)
                .where(sessions.c.token_hash == _token_hash(token), staff.c.active.is_(True))
            ).first()
        if row is None:
            return None
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite returns naive datetimes
            expires = expires.replace(tzinfo=at.tzinfo)
        if expires <= at:
            return None
        return Session(_member(row), row.csrf_token, row.kind)

    def deactivate(self, username: str) -> None:
        """A leaver: the account stops working at once, every session and token with it."""
        with self.db.platform() as conn:
            row = conn.execute(select(staff.c.id).where(staff.c.username == username)).first()
            if row is None:
                raise ValidationFailed([FieldError("username", "職員が見つかりません。",
                                                   "No such staff member.")])
            conn.execute(update(staff).where(staff.c.id == row.id).values(active=False))
            conn.execute(delete(sessions).where(sessions.c.staff_id == row.id))

    def deactivate_municipality(self, lgcode: str) -> int:
        """Every account of a municipality that closes, with its sessions and tokens."""
        with self.db.platform() as conn:
            ids = [r.id for r in conn.execute(select(staff.c.id).where(staff.c.lgcode == lgcode))]
            if ids:
                conn.execute(update(staff).where(staff.c.id.in_(ids)).values(active=False))
                conn.execute(delete(sessions).where(sessions.c.staff_id.in_(ids)))
        return len(ids)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 12:
            raise ValidationFailed([FieldError("password", "パスワードは12文字以上にしてください。",
                                               "password must be at least 12 characters.")])
        with self.db.platform() as conn:
            row = conn.execute(select(staff.c.id).where(staff.c.username == username)).first()
            if row is None:
                raise ValidationFailed([FieldError("username", "職員が見つかりません。",
                                                   "No such staff member.")])
            conn.execute(update(staff).where(staff.c.id == row.id)
                         .values(password_hash=_hasher.hash(password)))
            conn.execute(delete(sessions).where(sessions.c.staff_id == row.id))

    def purge(self, at: datetime, window_seconds: int) -> int:
        """Drops expired sessions and login failures older than the rate-limit window."""
        with self.db.platform() as conn:
            gone = conn.execute(delete(sessions).where(sessions.c.expires_at <= at)).rowcount
            gone += conn.execute(delete(login_failures).where(
                login_failures.c.at <= at - timedelta(seconds=window_seconds))).rowcount
        return int(gone)

    def logout(self, token: str) -> None:
        with self.db.platform() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token)))


def constant_time_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
