"""The resident portal's アクセス記録 page (issue 9 part 1): a resident signed in with the My
Number card sees who (department and role, never a staff member's name) read their record,
when, which items, for which purpose, and the reads outside a reader's purposes with the
reason stated.

The record shown is the one the portal's session names: the provider tells this deployment's
own portal which record signed in (`oidc.RESIDENT_CLAIM`, MAC'd with the platform's secret), so
the page takes no resident or municipality from the request and can show no one else's
records; the read runs in that municipality's tenant (row-level security on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from kiban.identity import oidc, portal
from kiban.platform.auth import ROLE_LABELS
from kiban.privacy.model import PURPOSES
from kiban.web import i18n
from kiban.web.deps import services

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
JST = timezone(timedelta(hours=9))

i18n.register({
    "portal.accesses.link": {"ja": "あなたの情報へのアクセス記録", "en": "Who accessed your record"},
    "portal.accesses.title": {"ja": "アクセス記録", "en": "Access log"},
    "portal.accesses.intro": {
        "ja": "市区町村の職員があなたの住民記録などを閲覧した記録です(新しい順)。職員の氏名ではなく、"
              "部署と役割を表示します。",
        "en": "Each time municipal staff read your resident record or related data (newest "
              "first). Staff are shown by department and role, not by name."},
    "portal.accesses.when": {"ja": "日時", "en": "When"},
    "portal.accesses.who": {"ja": "部署・役割", "en": "Department and role"},
    "portal.accesses.purpose": {"ja": "利用目的", "en": "Purpose"},
    "portal.accesses.fields": {"ja": "閲覧した項目", "en": "Items read"},
    "portal.accesses.channel": {"ja": "画面・API", "en": "Screen or API"},
    "portal.accesses.flag": {"ja": "目的外の利用", "en": "Outside the purpose"},
    "portal.accesses.flagged": {"ja": "担当外の目的(理由: {reason})。個人情報保護担当が確認します。",
                                "en": "Outside the reader's purposes (reason: {reason}); "
                                      "reviewed by the privacy officer."},
    "portal.accesses.none": {"ja": "アクセス記録はありません。", "en": "No one has accessed your record."},
    "portal.accesses.not_own": {
        "ja": "このログイン方法では住民記録を特定できないため、アクセス記録を表示できません。"
              "窓口で開示請求(個人情報保護法第76条)ができます。",
        "en": "This login does not tell which resident record is yours, so the access log "
              "cannot be shown. You can make a disclosure request at the counter (APPI art. 76)."},
    "portal.accesses.next": {"ja": "さらに古い記録", "en": "Older entries"},
    "portal.accesses.previous": {"ja": "新しい記録", "en": "Newer entries"},
    "portal.accesses.back": {"ja": "ポータルに戻る", "en": "Back to the portal"},
    "portal.accesses.api": {"ja": "システム連携(API)", "en": "System (API)"},
    "portal.accesses.page": {"ja": "職員用画面", "en": "Staff screen"},
})

ROLE_EN = {"counter_clerk": "Counter clerk", "registry_supervisor": "Registry supervisor",
           "tax_officer": "Tax officer", "privacy_officer": "Privacy officer",
           "municipality_admin": "Municipality administrator",
           "platform_admin": "Platform administrator"}
_ROLE_OF_LABEL = {label: role.value for role, label in ROLE_LABELS.items()}
FIELD_LABELS = {
    "name": ("氏名", "Name"), "kana": ("フリガナ", "Name in kana"),
    "birth_date": ("生年月日", "Date of birth"), "sex": ("性別", "Sex"),
    "address": ("住所", "Address"), "relationship": ("続柄", "Relationship"),
    "juminhyo_code": ("住民票コード", "Resident record code"), "honseki": ("本籍", "Registered domicile"),
    "foreign": ("外国人住民の記載事項", "Foreign resident items"), "my_number": ("個人番号", "My Number"),
    "access_records": ("アクセス記録", "Access records"), "access_log": ("閲覧記録", "Access log"),
    "suppression": ("支援措置", "Support measures"), "application": ("申請", "Applications"),
    "linkage_exchanges": ("情報連携の記録", "Data exchanges"),
    "income_levy": ("所得割", "Income levy"), "total_income": ("総所得金額等", "Total income"),
    "town": ("町字", "Town"), "household": ("世帯", "Household"),
}


def _entry(item: dict[str, Any], lang: str) -> dict[str, Any]:
    at = datetime.fromisoformat(item["at"])
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    purpose = PURPOSES.get(item["purpose"], (item["purpose"], item["purpose"]))
    roles = [ROLE_EN.get(_ROLE_OF_LABEL.get(r, r), r) if lang == "en" else r
             for r in item["roles"]]
    fields = [FIELD_LABELS.get(f, (f, f))[1 if lang == "en" else 0] for f in item["fields"]]
    return {"at": at.astimezone(JST).strftime("%Y-%m-%d %H:%M"), "department": item["department"],
            "roles": roles, "purpose": purpose[1 if lang == "en" else 0],
            "purpose_other": purpose[0 if lang == "en" else 1], "fields": fields,
            "channel": "page" if item["channel"].startswith("page:") else "api",
            "flagged": item["flagged"], "reason": item["reason"]}


@router.get("/portal/accesses")
def accesses(request: Request, page: int = Query(1, ge=1, le=100_000)) -> Response:
    resident = portal.unseal(request, request.cookies.get(portal.SESSION_COOKIE))
    if resident is None:
        return RedirectResponse("/portal", status_code=303)
    svc = services(request)
    own = oidc.open_resident_ref(svc.settings.secret_key, resident.get(oidc.RESIDENT_CLAIM))
    headers = {"Cache-Control": "no-store"}
    if own is None:
        response = i18n.render(request, "privacy_portal_accesses.html", None, status=403,
                               resident=resident, items=None, page=page, more=False)
        response.headers.update(headers)
        return response
    lgcode, resident_id = own
    view = svc.privacy.accesses_for_resident(lgcode, resident_id, page, PER_PAGE)
    lang = i18n.negotiate(request)
    response = i18n.render(request, "privacy_portal_accesses.html", None, resident=resident,
                           items=[_entry(i, lang) for i in view["items"]], page=page,
                           more=len(view["items"]) == PER_PAGE)
    response.headers.update(headers)
    return response
