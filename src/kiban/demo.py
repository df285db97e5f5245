"""`kiban demo seed`: three demo municipalities with their 町字 masters, a fictional
population imported through the standard migration path, and one staff account per role.

Everything here is fiction (kiban.registry.synthetic); the demo password is printed on
screen, so this refuses to run in production mode.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import typer

from kiban.core.clock import SystemClock, today_jst
from kiban.core.errors import Conflict, KibanError
from kiban.identity import demo as identity_demo
from kiban.identity import service as identity_service
from kiban.linkage import demo as linkage_demo
from kiban.opendata import demo as opendata_demo
from kiban.platform import settings as settings_module
from kiban.platform.auth import ROLE_LABELS, Role, StaffMember
from kiban.platform.db import Database
from kiban.registry import synthetic
from kiban.registry.migration import RegistryMigration
from kiban.tax import batch_demo as tax_demo
from kiban.web.context import Services

app = typer.Typer(help="Demo data (fictional residents, demo staff).", no_args_is_help=True)

DEMO_PASSWORD = "kiban-demo-2026"  # noqa: S105 - demo accounts only, printed on screen
URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class DemoMunicipality:
    lgcode: str  # 地方公共団体コード, check digit included
    name: str
    prefecture: str
    name_kana: str
    slug: str  # prefix of the staff usernames
    share: float  # of the seeded residents
    towns: tuple[tuple[str, str], ...]  # 町字 base names and readings for the master


MUNICIPALITIES = (
    DemoMunicipality("131016", "千代田区", "東京都", "チヨダク", "chiyoda", 0.25, (
        ("丸の内", "マルノウチ"), ("大手町", "オオテマチ"), ("有楽町", "ユウラクチョウ"),
        ("内幸町", "ウチサイワイチョウ"), ("永田町", "ナガタチョウ"), ("平河町", "ヒラカワチョウ"),
        ("麹町", "コウジマチ"), ("九段北", "クダンキタ"), ("九段南", "クダンミナミ"),
        ("富士見", "フジミ"), ("飯田橋", "イイダバシ"), ("神田神保町", "カンダジンボウチョウ"),
        ("一番町", "イチバンチョウ"), ("三番町", "サンバンチョウ"), ("紀尾井町", "キオイチョウ"),
        ("神田須田町", "カンダスダチョウ"), ("岩本町", "イワモトチョウ"), ("外神田", "ソトカンダ"))),
    DemoMunicipality("141003", "横浜市", "神奈川県", "ヨコハマシ", "yokohama", 0.45, (
        ("本町", "ホンチョウ"), ("元町", "モトマチ"), ("山下町", "ヤマシタチョウ"),
        ("山手町", "ヤマテチョウ"), ("桜木町", "サクラギチョウ"), ("野毛町", "ノゲチョウ"),
        ("伊勢佐木町", "イセザキチョウ"), ("日ノ出町", "ヒノデチョウ"), ("戸部町", "トベチョウ"),
        ("北幸", "キタサイワイ"), ("南幸", "ミナミサイワイ"), ("高島", "タカシマ"),
        ("みなとみらい", "ミナトミライ"), ("石川町", "イシカワチョウ"), ("寿町", "コトブキチョウ"),
        ("長者町", "チョウジャマチ"), ("弥生町", "ヤヨイチョウ"), ("若葉町", "ワカバチョウ"))),
    DemoMunicipality("011002", "札幌市", "北海道", "サッポロシ", "sapporo", 0.30, (
        ("北一条西", "キタイチジョウニシ"), ("北二条西", "キタニジョウニシ"),
        ("北三条西", "キタサンジョウニシ"), ("南一条西", "ミナミイチジョウニシ"),
        ("南二条西", "ミナミニジョウニシ"), ("大通西", "オオドオリニシ"), ("宮の森", "ミヤノモリ"),
        ("円山", "マルヤマ"), ("中の島", "ナカノシマ"), ("平岸", "ヒラギシ"), ("月寒", "ツキサム"),
        ("澄川", "スミカワ"), ("真駒内", "マコマナイ"), ("琴似", "コトニ"), ("山鼻", "ヤマハナ"),
        ("菊水", "キクスイ"), ("白石", "シロイシ"), ("厚別", "アツベツ"))),
)
# Username suffix and display name for each municipality role.
STAFF_ROLES = (
    (Role.COUNTER_CLERK, "clerk", "窓口 花子"),
    (Role.REGISTRY_SUPERVISOR, "supervisor", "住記 一郎"),
    (Role.TAX_OFFICER, "tax", "税務 次郎"),
    (Role.PRIVACY_OFFICER, "privacy", "保護 三郎"),
    (Role.MUNICIPALITY_ADMIN, "admin", "管理 桜子"),
    (Role.DIGITAL_OFFICER, "dx", "推進 五郎"),
)
PLATFORM_ADMIN = "platform-admin"


def _split(total: int) -> list[int]:
    """Residents per municipality by share; the last takes the rounding."""
    counts = [int(total * m.share) for m in MUNICIPALITIES[:-1]]
    return [*counts, total - sum(counts)]


def _staff(svc: Services, username: str, display_name: str, role: Role,
           lgcode: str | None) -> tuple[StaffMember, bool]:
    """The account, created unless it exists (then its password is whatever it was)."""
    try:
        member = svc.accounts.create(username, DEMO_PASSWORD, display_name, [role.value],
                                     lgcode, svc.clock.now(), department="デモ")
        return member, True
    except Conflict:
        found = next(m for m in svc.accounts.list(None) if m.username == username)
        return found, False


@app.command("seed")
def seed(residents: Annotated[int, typer.Option(
            "--residents", min=0, help="fictional residents, split over the three")] = 3000,
         seed_value: Annotated[int, typer.Option("--seed", help="population seed")] = 2026,
         ) -> None:
    """Create the demo municipalities, 町字 masters, residents and staff (skips what exists)."""
    settings = settings_module.load()
    if settings.mode == "production":
        typer.echo("error: demo data is refused in production mode / 本番環境ではデモデータを"
                   "作成できません", err=True)
        raise typer.Exit(2)
    clock = SystemClock()
    svc = Services.build(settings, clock, Database(settings))
    migration = RegistryMigration(svc.db, clock)
    today = today_jst(clock)
    logins: list[tuple[str, str, str, bool]] = []
    try:
        for index, (muni, count) in enumerate(zip(MUNICIPALITIES, _split(residents),
                                                  strict=True)):
            try:
                svc.municipalities.create(muni.lgcode, muni.name, muni.prefecture, clock.now(),
                                          muni.name_kana, actor="demo")
                typer.echo(f"{muni.lgcode} {muni.prefecture}{muni.name}: created")
            except Conflict:
                typer.echo(f"{muni.lgcode} {muni.prefecture}{muni.name}: exists")
            towns = svc.municipalities.towns(muni.lgcode)
            if not towns:
                master = synthetic.town_master(seed_value + index, bases=muni.towns)
                svc.municipalities.set_towns(muni.lgcode, master, clock.now(), "demo")
                towns = {t["code"]: t["name"] for t in master}
                typer.echo(f"  町字 master: {len(master)} towns")
            supervisor = None
            for role, suffix, display in STAFF_ROLES:
                username = f"{muni.slug}-{suffix}"
                member, created = _staff(svc, username, display, role, muni.lgcode)
                logins.append((username, role.value, f"{muni.lgcode} {muni.name}", created))
                if role is Role.REGISTRY_SUPERVISOR:
                    supervisor = member
            assert supervisor is not None
            existing = svc.registry.dashboard(supervisor, muni.lgcode)
            if existing["residents"] or existing["removed"]:
                typer.echo(f"  residents: {existing['residents']} already registered, skipped")
                continue
            if count == 0:
                continue
            # Through the migration import, as a vendor's file would come.
            text = io.StringIO()
            synthetic.write_jsonl(synthetic.population(
                muni.lgcode, sorted(towns), count, seed=seed_value + index, as_of=today), text)
            text.seek(0)
            report = migration.import_(supervisor, muni.lgcode, text)
            if not report.ok:
                for line in report.lines():
                    typer.echo(line, err=True)
                raise typer.Exit(2)
            typer.echo(f"  residents: {report.imported_residents} imported in "
                       f"{report.imported_households} households")
        _, created = _staff(svc, PLATFORM_ADMIN, "基盤 管理者", Role.PLATFORM_ADMIN, None)
        logins.append((PLATFORM_ADMIN, Role.PLATFORM_ADMIN.value, "-", created))
        _seed_talent(svc, logins)
        _seed_standard(svc, logins)
        typer.echo(f"assist: {svc.assist.seed_demo()} FAQs (shared bank and each demo municipality's)")
        opendata_demo.seed(svc.db, clock, svc.accounts, [(m.lgcode, m.name, m.prefecture, [
            t[0] for t in m.towns]) for m in MUNICIPALITIES], typer.echo)
        linkage_demo.seed(svc, typer.echo)
        identity_demo.seed(svc.db, clock, svc.registry, svc.municipalities, MUNICIPALITIES[0].lgcode,
                           settings.mode, identity_service.PROJECT_ROOT / "var", typer.echo)
        tax_demo.seed(svc, [m.lgcode for m in MUNICIPALITIES], typer.echo)
        typer.echo(f"privacy: budget and call for proposals in "
                   f"{svc.privacy.seed_demo([m.lgcode for m in MUNICIPALITIES])} municipalities")
    except KibanError as exc:
        typer.echo(f"error: {exc.en} / {exc.ja}", err=True)
        raise typer.Exit(2) from exc
    finally:
        svc.db.dispose()
    _print_logins(logins)


# Two towns beside 札幌市 that share one specialist with it (広域確保); no residents.
TALENT_TOWNS = (("012173", "江別市", "エベツシ", "ebetsu"), ("012351", "石狩市", "イシカリシ", "ishikari"))
# username, name, skills, regions (on site), remote, days a month, yen a day, hidden fields
SPECIALISTS: tuple[tuple[str, str, list[str], list[str], bool, int, int, list[str]], ...] = (
    ("specialist-sato", "佐藤 美咲", ["information_security", "standard_migration", "network"],
     ["北海道"], True, 8, 45000, []),
    ("specialist-suzuki", "鈴木 健太", ["cloud_migration", "standard_migration",
                                     "project_management"], ["東京都", "神奈川県"], True, 10,
     60000, ["rate_per_day"]),
    ("specialist-takahashi", "高橋 由美", ["data_analysis", "ai_utilisation", "ux_design"], [],
     True, 6, 50000, []),
    ("specialist-tanaka", "田中 誠", ["procurement", "bpr", "online_procedures"], ["神奈川県"],
     False, 12, 40000, ["display_name"]),
)


def _seed_talent(svc: Services, logins: list[tuple[str, str, str, bool]]) -> None:
    """Specialists, a joint need of three Hokkaido towns, needs in Tokyo and Yokohama, and
    one engagement under way, so the pool's pages have content from the first start."""
    now = svc.clock.now()
    dx: dict[str, StaffMember] = {}
    for code, name, kana, slug in TALENT_TOWNS:
        try:
            svc.municipalities.create(code, name, "北海道", now, kana, actor="demo")
        except Conflict:
            pass
        dx[code], created = _staff(svc, f"{slug}-dx", "推進 六郎", Role.DIGITAL_OFFICER, code)
        logins.append((f"{slug}-dx", Role.DIGITAL_OFFICER.value, f"{code} {name}", created))
    for muni in MUNICIPALITIES:
        dx[muni.lgcode] = next(m for m in svc.accounts.list(muni.lgcode)
                               if m.username == f"{muni.slug}-dx")
    people: dict[str, StaffMember] = {}
    for username, name, *_ in SPECIALISTS:
        people[username], created = _staff(svc, username, name, Role.SPECIALIST, None)
        logins.append((username, Role.SPECIALIST.value, "-", created))
    if svc.talent.needs(dx["011002"], "mine"):
        typer.echo("specialist pool: already seeded, skipped")
        return
    for username, name, skills, regions, remote, days, rate, hidden in SPECIALISTS:
        svc.talent.save_profile(people[username], {
            "display_name": name, "skills": skills, "regions": regions, "onsite": bool(regions),
            "remote": remote, "days_per_month": days, "rate_per_day": rate, "hidden": hidden,
            "experience": "(デモ用の架空の経歴)"})
    month = today_jst(svc.clock).isoformat()[:7]
    year, mon = int(month[:4]), int(month[5:])
    until = f"{year + 1}-{mon:02d}"
    joint = svc.talent.post_need(dx["011002"], {
        "title": "3市共同 情報セキュリティ・標準化移行支援", "tasks": "セキュリティポリシー改定、"
        "標準準拠システム移行の進捗管理、職員研修", "required_skills": ["information_security"],
        "preferred_skills": ["standard_migration"], "days_per_month": 6, "start": month,
        "end": until, "onsite_percent": 50, "budget_per_month": 270000,
        "shares": [{"lgcode": "011002", "days": 2}, {"lgcode": "012173", "days": 2},
                   {"lgcode": "012351", "days": 2}]})
    for code in ("012173", "012351"):
        svc.talent.confirm_share(dx[code], joint["id"])
    svc.talent.post_need(dx["131016"], {
        "title": "ガバメントクラウド移行の PMO", "tasks": "移行計画とベンダー調整",
        "required_skills": ["cloud_migration", "project_management"], "days_per_month": 8,
        "start": month, "end": until, "onsite_percent": 25, "budget_per_month": 480000})
    yokohama = svc.talent.post_need(dx["141003"], {
        "title": "オンライン申請の業務改革", "tasks": "手続の棚卸しと BPR",
        "required_skills": ["bpr", "online_procedures"], "preferred_skills": ["procurement"],
        "days_per_month": 6, "start": month, "end": until, "onsite_percent": 0,
        "budget_per_month": 240000})
    tanaka = svc.talent.my_profile(people["specialist-tanaka"])
    assert tanaka is not None
    offer = svc.talent.offer(dx["141003"], yokohama["id"], {"specialist_id": tanaka["id"]})
    svc.talent.respond(people["specialist-tanaka"], offer["id"], accept=True)
    typer.echo("specialist pool: 4 specialists, 3 needs (one joint), 1 engagement")


def _seed_standard(svc: Services, logins: list[tuple[str, str, str, bool]]) -> None:
    """The standard's maintainer, a change proposal endorsed by another city, and one public
    deviation, so that the standard's pages show how each works."""
    _, created = _staff(svc, "standard-maintainer", "標準 管理者", Role.STANDARD_MAINTAINER, None)
    logins.append(("standard-maintainer", Role.STANDARD_MAINTAINER.value, "-", created))
    if svc.standard.proposals(None):
        return
    chiyoda = next(m for m in svc.accounts.list("131016") if m.username == "chiyoda-supervisor")
    yokohama = next(m for m in svc.accounts.list("141003") if m.username == "yokohama-admin")
    proposal = svc.standard.propose(chiyoda, {
        "requirement": "JR-0201", "title": "通称でも検索できるようにする",
        "proposed_text": "氏名、フリガナ又は通称の前方一致で住民を検索できること。",
        "rationale": "(デモ)外国人住民の窓口では通称での照会が多く、現行の要件では探せないため。"})
    svc.standard.endorse(yokohama, proposal["id"])
    sapporo = next(m for m in svc.accounts.list("011002") if m.username == "sapporo-admin")
    today = today_jst(svc.clock)
    svc.standard.record_deviation(sapporo, "011002", {
        "requirement": "JR-0415", "value": "require_reason",
        "what": "14日を過ぎた届出に遅延理由の記載を求める",
        "reason": "(デモ)届出期間経過の通知事務のため、理由を必ず記録する運用としている。",
        "decided_by": "札幌市長(デモ)", "decided_on": today.isoformat(),
        "review_on": (today + timedelta(days=365)).isoformat()})
    typer.echo("standard: 1 change proposal, 1 public deviation (札幌市)")


def _width(text: str) -> int:
    """Display width: kanji and kana take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 0)


def _print_logins(logins: list[tuple[str, str, str, bool]]) -> None:
    typer.echo("")
    typer.echo("Staff logins / 職員ログイン (demo only / デモ専用):")
    width = max(len(u) for u, *_ in logins) + 1
    roles = {role: f"{role} ({ROLE_LABELS[Role(role)]})" for _, role, *_ in logins}
    role_width = max(_width(r) for r in roles.values())
    typer.echo(f"  {_pad('username', width)}  {_pad('password', len(DEMO_PASSWORD))}  "
               f"{_pad('role', role_width)}  municipality")
    for username, role, municipality, created in logins:
        name = username + ("" if created else "*")
        typer.echo(f"  {_pad(name, width)}  {DEMO_PASSWORD}  {_pad(roles[role], role_width)}  "
                   f"{municipality}")
    if not all(created for *_, created in logins):
        typer.echo("  * existed already: its password was left as it was / 既存のアカウント"
                   "(パスワードは変更していません)")
    typer.echo("")
    typer.echo(f"Open / 開く: {URL}   (kiban serve)")
