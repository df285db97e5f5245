"""Black-box conformance checks of the resident registry (住民記録, requirements JR-....).

Each check drives the standard HTTP API through `Context` only (httpx), so it runs against
any vendor's implementation. Each creates its own residents, with names made unique by
`ctx.unique()`, and cites every requirement it checks.

Operations the standard needs but Kiban has not built yet are called at the REST shape a
standard implementation should offer (suppressions, statistics, integration feeds, reports,
migration, extraction, access log, CSV import); where the target has no such route, the
check ends in NotImplementedHere.

For a not-allowed (実装不可) requirement the passing outcome is that the forbidden thing does
not happen: the request is refused, or the operation does not exist at all (404/405).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx

from kiban.standard.kit.core import Context, Failed, NotImplementedHere, check, expect

# --- helpers --------------------------------------------------------------------------------

_KANA = "アイウエオカキクケコサシスセソタ"  # one katakana per hex digit
_KANJI = "一二三四五六七八九十百千万上下中"  # one kanji per hex digit


class Names:
    """Unique family and given names (kanji and kana) for one check's residents."""

    def __init__(self, ctx: Context) -> None:
        token = ctx.unique()
        self.tag = token
        self.kana_tag = "".join(_KANA[int(c, 16)] for c in token)
        self.kanji_tag = "".join(_KANJI[int(c, 16)] for c in token)
        self.family = "検" + self.kanji_tag
        self.family_kana = "ケン" + self.kana_tag
        self.number = int(token, 16)


def _day(ctx: Context, days_ago: int = 0) -> str:
    return (ctx.today - timedelta(days=days_ago)).isoformat()


def _check_digit(body: str) -> int:
    """Modulus 11 with weights n+1 for the n-th digit from the right (n <= 6), n-5 beyond;
    a remainder of 0 or 1 gives 0 (住民票コード and 個人番号 alike)."""
    total = sum(int(ch) * (n + 1 if n <= 6 else n - 5)
                for n, ch in zip(range(len(body), 0, -1), body, strict=True))
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def _valid_code(value: Any, length: int) -> bool:
    return (isinstance(value, str) and len(value) == length and value.isascii()
            and value.isdigit() and _check_digit(value[:-1]) == int(value[-1]))


def _new_juminhyo_code() -> str:
    body = f"{secrets.randbelow(10**10):010d}"
    return body + str(_check_digit(body))


def _new_my_number() -> str:
    body = f"{secrets.randbelow(10**11):011d}"
    return body + str(_check_digit(body))


def _wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def _hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def _person(n: Names, given: str = "タロウ", given_name: str = "太郎", **overrides: Any
            ) -> dict[str, Any]:
    data: dict[str, Any] = {
        "family_name": n.family, "given_name": given_name, "family_kana": n.family_kana,
        "given_kana": given, "birth_date": "1980-05-05", "sex": "1", "relationship": "世帯主"}
    data.update(overrides)
    return data


def _spouse(n: Names, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"sex": "2", "relationship": "妻", "birth_date": "1982-07-07",
                              **overrides}
    return _person(n, values.pop("given_kana", "ハナコ"), values.pop("given_name", "花子"),
                   **values)


def _address(ctx: Context, town: int = 0, n: Names | None = None) -> dict[str, str]:
    banchi = f"{(n.number % 900) + 1}番地{(n.number // 900) % 90 + 1}" if n else "1番地2"
    return {"town_code": ctx.home.towns[town]["code"], "banchi": banchi, "katagaki": "適合荘101"}


def _move_in_body(ctx: Context, members: list[dict[str, Any]], n: Names | None = None,
                  **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "origin": "domestic", "occurred_on": _day(ctx, 5), "notified_on": _day(ctx, 1),
        "previous_address": "大阪府大阪市北区梅田1-1", "address": _address(ctx, 0, n),
        "members": members}
    body.update(overrides)
    return body


def _move_in(ctx: Context, members: list[dict[str, Any]], n: Names | None = None,
             role: str = "clerk", **overrides: Any) -> dict[str, Any]:
    """A 転入; the answer holds event_id, resident_ids and household_ids."""
    result = ctx.ok(ctx.call("POST", "/changes/move-in", role,
                             json=_move_in_body(ctx, members, n, **overrides)), 201)
    expect(len(result.get("resident_ids", [])) == len(members),
           f"a move-in of {len(members)} should name {len(members)} residents: {result}")
    return result


def _household_of_two(ctx: Context, n: Names, role: str = "clerk") -> tuple[str, str, str]:
    """(head id, spouse id, household id) of a fresh two-person household."""
    made = _move_in(ctx, [_person(n), _spouse(n)], n, role)
    head, spouse = made["resident_ids"]
    return head, spouse, _resident(ctx, head)["household_id"]


def _resident(ctx: Context, resident_id: str, role: str = "clerk") -> dict[str, Any]:
    return ctx.ok(ctx.call("GET", f"/residents/{resident_id}", role), 200)


def _household(ctx: Context, household_id: str, role: str = "clerk") -> dict[str, Any]:
    return ctx.ok(ctx.call("GET", f"/households/{household_id}", role), 200)


def _search(ctx: Context, role: str = "clerk", **params: Any) -> dict[str, Any]:
    return ctx.ok(ctx.call("GET", "/residents", role, params=params), 200)


def _history(ctx: Context, resident_id: str, role: str = "clerk") -> list[dict[str, Any]]:
    response = ctx.call("GET", f"/residents/{resident_id}/history", role)
    ctx.ok(response, 200)
    body = response.json()
    expect(isinstance(body, list), "the history is a list of changes")
    return list(body)


def _nobody(ctx: Context, n: Names, role: str = "clerk") -> None:
    """Nothing was recorded for these names (a refused change leaves nothing)."""
    found = _search(ctx, role, name=n.family_kana)
    expect(found.get("total") == 0, f"a refused change left {found.get('total')} residents")


def _fields(body: dict[str, Any]) -> set[str]:
    return {str(f) for f in [body.get("field")] + [e.get("field") for e in body.get("errors", [])]
            if f}


def _refused_naming(ctx: Context, response: httpx.Response, prefix: str,
                    status: tuple[int, ...] = (400, 409, 422)) -> dict[str, Any]:
    body = ctx.refused(response, status)
    expect(any(f == prefix or f.startswith(prefix + ".") or f.startswith(prefix + "[")
               for f in _fields(body)), f"the refusal should name {prefix}, named {_fields(body)}")
    return body


def _absent_or_refused(response: httpx.Response, what: str) -> None:
    """For a not-allowed operation: it must not succeed. 404/405/501 (no such operation),
    403 or another refusal pass; any 2xx fails."""
    if response.is_success:
        raise Failed(f"{what}: the target did it ({response.status_code}); the standard does "
                     "not allow it")
    expect(response.status_code >= 400, f"{what}: unexpected answer {response.status_code}")


def _unknown_field_is_missing(ctx: Context, response: httpx.Response, names: set[str],
                              what: str) -> None:
    """A 400/422 that names only a field the target does not know means the target lacks
    the feature (NotImplementedHere), not that it refused the request on its merits."""
    if response.status_code in (400, 422):
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and _fields(body) & names:
            raise NotImplementedHere(f"{what}: the target does not accept {sorted(names)}")


def _certificates(ctx: Context, role: str = "clerk") -> list[dict[str, Any]]:
    response = ctx.call("GET", "/certificates", role)
    ctx.ok(response, 200)
    body = response.json()
    return list(body) if isinstance(body, list) else list(body.get("items", []))


def _issued_for(ctx: Context, resident_id: str, role: str = "clerk") -> list[dict[str, Any]]:
    """Issued certificates naming the resident (the checks' residents are fresh, so any is
    one a check caused)."""
    return [c for c in _certificates(ctx, role) if resident_id in (c.get("resident_ids") or [])]


def _expect_pdf(ctx: Context, response: httpx.Response) -> str:
    ctx.ok(response, (200, 201))
    expect(response.headers.get("content-type", "").startswith("application/pdf"),
           f"a certificate is application/pdf, got {response.headers.get('content-type')}")
    expect(response.content.startswith(b"%PDF"), "a certificate is a PDF document")
    serial = str(response.headers.get("X-Certificate-Serial", ""))
    expect(bool(serial), "a certificate carries its serial in X-Certificate-Serial")
    return serial


def _suppress(ctx: Context, resident_id: str) -> dict[str, Any]:
    """Sets a 支援措置 suppression (standard shape: POST /suppressions)."""
    return ctx.ok(ctx.call("POST", "/suppressions", "supervisor", json={
        "resident_id": resident_id, "reason": "DV等支援措置", "starts_on": _day(ctx),
        "ends_on": (ctx.today + timedelta(days=365)).isoformat()}), 201)


def _list(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return list(body.get("items", []))
    return []


# --- 3.1 managed items -------------------------------------------------------------------------


@check("CT-REG-001", "JR-0101", "JR-0401", "JR-0103",
       title="転入: 記載事項が記録され、住民票コードが11桁・検査数字付きで採番される")
def move_in_records_items(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n), _spouse(n)], n)
    head = _resident(ctx, made["resident_ids"][0])
    spouse = _resident(ctx, made["resident_ids"][1])
    expect(head.get("family_name") == n.family and head.get("given_name") == "太郎",
           f"氏名 as recorded: {head.get('family_name')} {head.get('given_name')}")
    expect(head.get("family_kana") == n.family_kana and head.get("given_kana") == "タロウ",
           "フリガナ as recorded")
    expect(head.get("birth_date") == "1980-05-05" and head.get("sex") == "1", "生年月日・性別")
    expect(head.get("relationship") == "世帯主" and spouse.get("relationship") == "妻", "続柄")
    expect(head.get("resident_since") == _day(ctx, 5), "住民となった年月日 is the move-in date")
    expect(head.get("notified_on") == _day(ctx, 1), "届出の年月日")
    expect(head.get("previous_address") == "大阪府大阪市北区梅田1-1", "従前の住所")
    expect(head.get("status") == "active", "a new record is active")
    address = head.get("address") or {}
    expect(address.get("town_code") == ctx.home.towns[0]["code"]
           and address.get("katagaki") == "適合荘101", f"住所 as recorded: {address}")
    expect(head.get("household_id") == spouse.get("household_id"), "one household")
    codes = [head.get("juminhyo_code"), spouse.get("juminhyo_code")]
    expect(all(_valid_code(c, 11) for c in codes),
           f"住民票コード: 11 digits with a valid check digit, got {codes}")
    expect(codes[0] != codes[1], "each resident has a code of their own")
    # A domestic move-in needs the previous address.
    n2 = Names(ctx)
    refused = ctx.call("POST", "/changes/move-in",
                       json=_move_in_body(ctx, [_person(n2)], n2, previous_address=""))
    _refused_naming(ctx, refused, "previous_address")
    _nobody(ctx, n2)


@check("CT-REG-002", "JR-0101", "JR-1101",
       title="誤った記載事項は項目名を示して拒否され、何も記録されない")
def bad_items_refused(ctx: Context) -> None:
    n = Names(ctx)
    cases: list[tuple[dict[str, Any], str]] = [
        (_person(n, family_kana="yamada"), "members[0].family_kana"),
        (_person(n, given_kana="太郎"), "members[0].given_kana"),
        (_person(n, birth_date=(ctx.today + timedelta(days=3)).isoformat()),
         "members[0].birth_date"),
        (_person(n, birth_date="1980-13-45"), "members[0].birth_date"),
        (_person(n, sex="3"), "members[0].sex"),
        (_person(n, relationship="王"), "members[0].relationship"),
        (_person(n, family_name=""), "members[0].family_name"),
    ]
    for member, field in cases:
        _refused_naming(ctx, ctx.call("POST", "/changes/move-in",
                                      json=_move_in_body(ctx, [member], n)), field)
    _nobody(ctx, n)


@check("CT-REG-003", "JR-0102", title="町字マスタにない町字・不正な番地は拒否される")
def address_from_town_master(ctx: Context) -> None:
    n = Names(ctx)
    known = {t["code"] for t in ctx.home.towns}
    missing = next(f"{i:07d}" for i in range(9999999, 0, -1) if f"{i:07d}" not in known)
    bad = {"town_code": missing, "banchi": "1番地", "katagaki": ""}
    _refused_naming(ctx, ctx.call("POST", "/changes/move-in",
                                  json=_move_in_body(ctx, [_person(n)], n, address=bad)),
                    "address.town_code")
    # A town of another municipality's master is not in this one's either (if it differs).
    bad_banchi = {**_address(ctx), "banchi": "どこか"}
    _refused_naming(ctx, ctx.call("POST", "/changes/move-in",
                                  json=_move_in_body(ctx, [_person(n)], n, address=bad_banchi)),
                    "address.banchi")
    _nobody(ctx, n)
    # A relocation to a town not in the master is refused too, and changes nothing.
    _, _, household = _household_of_two(ctx, n)
    before = _household(ctx, household)["address"]
    _refused_naming(ctx, ctx.call("POST", "/changes/relocation", json={
        "household_id": household, "occurred_on": _day(ctx, 1), "notified_on": _day(ctx),
        "address": bad}), "address.town_code")
    expect(_household(ctx, household)["address"] == before, "a refused relocation changed nothing")


@check("CT-REG-004", "JR-1902", "JR-0102",
       title="実装不可: 町字マスタによらない自由記述の住所は記録できない")
def free_text_address_refused(ctx: Context) -> None:
    n = Names(ctx)
    for address in ("東京都千代田区適合町一丁目1番地2",
                    {"text": "東京都千代田区適合町一丁目1番地2"},
                    {"town_name": "適合町一丁目", "banchi": "1番地2"},
                    {**_address(ctx), "free_text": "東京都千代田区適合町一丁目1番地2"}):
        response = ctx.call("POST", "/changes/move-in",
                            json=_move_in_body(ctx, [_person(n)], n, address=address))
        _absent_or_refused(response, "a move-in with a free-text address")
        expect(response.status_code in (400, 422),
               f"a free-text address is refused as bad input, got {response.status_code}")
        expect(any(f.startswith("address") for f in _fields(response.json())),
               f"the refusal names the address, named {_fields(response.json())}")
    _nobody(ctx, n)


@check("CT-REG-005", "JR-0103",
       title="引き継いだ住民票コードはそのまま記載され、検査数字の誤りは拒否される")
def carried_over_code(ctx: Context) -> None:
    n = Names(ctx)
    code = _new_juminhyo_code()
    wrong = _move_in_body(ctx, [_person(n, juminhyo_code=_wrong_check_digit(code))], n)
    _refused_naming(ctx, ctx.call("POST", "/changes/move-in", json=wrong),
                    "members[0].juminhyo_code")
    _nobody(ctx, n)
    short = _move_in_body(ctx, [_person(n, juminhyo_code=code[:10])], n)
    ctx.refused(ctx.call("POST", "/changes/move-in", json=short))
    _nobody(ctx, n)
    made = _move_in(ctx, [_person(n, juminhyo_code=code)], n)
    expect(_resident(ctx, made["resident_ids"][0]).get("juminhyo_code") == code,
           "a carried-over 住民票コード is kept")
    found = _search(ctx, juminhyo_code=code)
    expect(found.get("total") == 1, "the carried-over code finds the resident")


@check("CT-REG-006", "JR-0108", title="記載済みの住民票コードを別の住民票に記載することは拒否される")
def duplicate_code_refused(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    code = _resident(ctx, made["resident_ids"][0])["juminhyo_code"]
    n2 = Names(ctx)
    response = ctx.call("POST", "/changes/move-in",
                        json=_move_in_body(ctx, [_person(n2, juminhyo_code=code)], n2))
    body = ctx.refused(response, (409, 422))
    expect(any(f.endswith("juminhyo_code") for f in _fields(body)),
           f"the refusal names juminhyo_code, named {_fields(body)}")
    _nobody(ctx, n2)
    expect(_search(ctx, juminhyo_code=code).get("total") == 1, "the code stays with one record")


@check("CT-REG-007", "JR-0104",
       title="個人番号は検査数字を検査し、閲覧権限のない窓口担当には応答に含めない")
def my_number_visibility(ctx: Context) -> None:
    n = Names(ctx)
    number = _new_my_number()
    bad = _move_in_body(ctx, [_person(n, my_number=_wrong_check_digit(number))], n)
    _refused_naming(ctx, ctx.call("POST", "/changes/move-in", "supervisor", json=bad),
                    "members[0].my_number")
    _nobody(ctx, n, "supervisor")
    made = _move_in(ctx, [_person(n, my_number=number)], n, "supervisor")
    rid = made["resident_ids"][0]
    expect(_resident(ctx, rid, "supervisor").get("my_number") == number,
           "the supervisor sees the 個人番号")
    seen = ctx.call("GET", f"/residents/{rid}", "clerk")
    ctx.ok(seen, 200)
    expect(number not in seen.text, "the clerk's view of the resident must not hold the 個人番号")
    listed = ctx.call("GET", "/residents", "clerk", params={"name": n.family_kana})
    ctx.ok(listed, 200)
    expect(number not in listed.text, "the clerk's search results must not hold the 個人番号")
    history = ctx.call("GET", f"/residents/{rid}/history", "clerk")
    ctx.ok(history, 200)
    expect(number not in history.text, "the clerk's history view must not hold the 個人番号")


@check("CT-REG-008", "JR-0105", title="外国人住民の記載事項(30条の45)が記録され、本籍は拒否される")
def foreign_resident_items(ctx: Context) -> None:
    n = Names(ctx)
    foreign = {"nationality": "ベトナム", "residence_status": "技術・人文知識・国際業務",
               "period": "3年", "expiry": (ctx.today + timedelta(days=900)).isoformat(),
               "card_number": f"AB{n.number % 10**8:08d}CD", "alias": "通称" + n.kanji_tag,
               "category": "中長期在留者"}
    member = _person(n, foreign=foreign)
    with_honseki = _person(n, foreign=foreign, honseki="東京都千代田区", hittosha=n.family)
    _refused_naming(ctx, ctx.call("POST", "/changes/move-in", json=_move_in_body(
        ctx, [with_honseki], n, origin="abroad", previous_address="")), "members[0].honseki")
    _nobody(ctx, n)
    made = _move_in(ctx, [member], n, origin="abroad", previous_address="")
    got = _resident(ctx, made["resident_ids"][0]).get("foreign") or {}
    for key in ("nationality", "residence_status", "period", "expiry", "card_number", "alias",
                "category"):
        expect(got.get(key) == foreign[key], f"foreign.{key}: sent {foreign[key]!r}, "
               f"recorded {got.get(key)!r}")
    incomplete = {k: v for k, v in foreign.items() if k != "residence_status"}
    n2 = Names(ctx)
    ctx.refused(ctx.call("POST", "/changes/move-in", json=_move_in_body(
        ctx, [_person(n2, foreign=incomplete)], n2, origin="abroad", previous_address="")))
    _nobody(ctx, n2)


@check("CT-REG-009", "JR-0106", title="旧氏を記載し、職権修正で更新できる")
def former_surname(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n, former_surname="旧" + n.kanji_tag)], n)
    rid = made["resident_ids"][0]
    expect(_resident(ctx, rid).get("former_surname") == "旧" + n.kanji_tag, "旧氏 as recorded")
    ctx.ok(ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": rid, "updates": {"former_surname": "改" + n.kanji_tag},
        "reason": "旧氏の記載の請求"}), 201)
    expect(_resident(ctx, rid).get("former_surname") == "改" + n.kanji_tag, "旧氏 corrected")


@check("CT-REG-010", "JR-0107", title="異体字セレクタを含む氏名が字形の区別を保って保存される")
def variation_selectors_kept(ctx: Context) -> None:
    n = Names(ctx)
    family = "葛\U000e0100" + n.kanji_tag  # 葛 with an IVS (葛󠄀)
    made = _move_in(ctx, [_person(n, family_name=family)], n)
    got = _resident(ctx, made["resident_ids"][0]).get("family_name")
    expect(got == family, f"the name must keep its variation selector: sent {family!r}, "
           f"got {got!r}")
    found = _search(ctx, name="葛" + n.kanji_tag)
    expect(found.get("total") == 1, "a search typed without the selector still finds the name")


# --- 3.2 search and inquiry -------------------------------------------------------------------


@check("CT-REG-011", "JR-0201",
       title="検索: カナ・ひらがな・漢字の前方一致、生年月日、住所、住民票コード、頁送り")
def search_semantics(ctx: Context) -> None:
    n = Names(ctx)
    given_kana = "ハナ" + n.kana_tag
    made = _move_in(ctx, [_person(n), _spouse(n, given_kana=given_kana)], n)
    head, spouse = made["resident_ids"]
    ids = {head, spouse}
    code = _resident(ctx, head)["juminhyo_code"]
    address = _address(ctx, 0, n)

    def found(**params: Any) -> set[str]:
        body = _search(ctx, **params)
        return {str(i.get("id")) for i in body.get("items", [])}

    expect(found(name=n.family_kana[:5]) == ids, "a prefix of the family kana finds both")
    expect(found(name=_hiragana(n.family_kana)) == ids, "hiragana finds katakana readings")
    expect(found(name=n.family) == ids, "the kanji family name finds both")
    expect(found(name=given_kana[:4]) == {spouse}, "a prefix of the given kana finds one")
    expect(found(name=n.family_kana, birth_date="1982-07-07") == {spouse},
           "name and date of birth narrow the search")
    expect(found(town_code=address["town_code"], banchi=address["banchi"]) >= ids,
           "the address finds the household")
    expect(found(juminhyo_code=code) == {head}, "the 住民票コード finds one")
    first = _search(ctx, name=n.family_kana, per_page=1, page=1)
    second = _search(ctx, name=n.family_kana, per_page=1, page=2)
    expect(first.get("total") == 2 and len(first.get("items", [])) == 1, "paged: one per page")
    expect({first["items"][0]["id"], second["items"][0]["id"]} == ids, "page 2 holds the other")
    ctx.refused(ctx.call("GET", "/residents"))  # no condition at all


@check("CT-REG-012", "JR-0204", title="カナ氏名検索の一致方法(既定: 前方一致)")
def kana_match_option(ctx: Context) -> None:
    muni = ctx.ok(ctx.call("GET", f"/api/v1/municipalities/{ctx.home.lgcode}", "admin"), 200)
    mode = (muni.get("settings") or {}).get("search_kana_match", "prefix")
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    rid = made["resident_ids"][0]

    def hits(name: str) -> bool:
        return rid in {i.get("id") for i in _search(ctx, name=name).get("items", [])}

    expect(hits(n.family_kana), "the whole family kana finds the resident")
    if mode == "exact":
        expect(not hits(n.family_kana[:-2]), "exact matching: a prefix does not match")
    else:
        expect(hits(n.family_kana[:-2]), "prefix matching: a prefix finds the resident")
    expect(not hits(n.family_kana[3:]), "a substring from the middle is not a prefix")


@check("CT-REG-013", "JR-0202", title="除票は検索条件の指定で検索でき、個別に照会できる")
def removed_records_retrievable(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, _ = _household_of_two(ctx, n)
    ctx.ok(ctx.call("POST", "/changes/death", json={
        "resident_id": spouse, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}), 201)
    active = {i["id"] for i in _search(ctx, name=n.family_kana).get("items", [])}
    expect(active == {head}, "by default a search shows active records only")
    every = _search(ctx, name=n.family_kana, include_removed="true").get("items", [])
    expect({i["id"] for i in every} == {head, spouse}, "with include_removed the 除票 is found")
    removed = _resident(ctx, spouse)
    expect(removed.get("status") == "removed", f"the 除票's status: {removed.get('status')}")
    expect(removed.get("removed_on") == _day(ctx, 2), "消除の年月日 is the date of death")


@check("CT-REG-014", "JR-0203", "JR-0418", title="世帯と世帯員・異動履歴を時系列で照会できる")
def inquiry_household_history(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    hh = _household(ctx, household)
    expect({m.get("id") for m in hh.get("members", [])} == {head, spouse}, "the household lists both")
    expect(hh.get("head_id") == head, "the household names its head")
    ctx.ok(ctx.call("POST", "/changes/relocation", json={
        "household_id": household, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1),
        "address": _address(ctx, 1, n)}), 201)
    history = _history(ctx, head)
    kinds = [e.get("kind") for e in history]
    expect(kinds == ["move_in", "relocation"], f"history, oldest first: {kinds}")
    last = history[-1]
    expect(last.get("occurred_on") == _day(ctx, 2) and last.get("notified_on") == _day(ctx, 1),
           "each change keeps its change date and notice date")
    expect(bool(last.get("actor")), "each change names the staff member")
    expect(head in (last.get("before") or {}) and head in (last.get("after") or {}),
           "each change keeps the record as before and after")


@check("CT-REG-015", "JR-1003", title="他団体の職員は住民を検索・照会・異動できない")
def tenant_isolation(ctx: Context) -> None:
    n = Names(ctx)
    head, _, household = _household_of_two(ctx, n)
    home = ctx.base(ctx.home)
    for method, path, body in (
            ("GET", f"{home}/residents/{head}", None),
            ("GET", f"{home}/residents", None),
            ("GET", f"{home}/households/{household}", None),
            ("GET", f"{home}/residents/{head}/history", None),
            ("POST", f"{home}/changes/move-in", _move_in_body(ctx, [_person(Names(ctx))])),
            ("POST", f"{home}/changes/death", {"resident_id": head, "occurred_on": _day(ctx, 1),
                                               "notified_on": _day(ctx)}),
            ("POST", f"{home}/certificates", {"resident_ids": [head]})):
        params = {"name": n.family_kana} if path.endswith("/residents") else None
        response = ctx.call(method, path, "clerk", json=body, params=params, tenant=ctx.other)
        expect(response.status_code in (401, 403, 404),
               f"{method} {path} by another municipality's clerk: {response.status_code}")
        expect(n.family not in response.text and n.family_kana not in response.text,
               "the refusal must not reveal the resident")
    # Through its own municipality's URL the other clerk finds nothing of ours either.
    own = ctx.call("GET", f"/residents/{head}", "clerk", tenant=ctx.other)
    expect(own.status_code in (403, 404), f"another municipality reads our resident: {own.status_code}")
    found = ctx.ok(ctx.call("GET", "/residents", "clerk", params={"name": n.family_kana},
                            tenant=ctx.other), 200)
    expect(found.get("total") == 0, "another municipality's search finds our residents")
    expect(_resident(ctx, head).get("status") == "active", "nothing changed")


@check("CT-REG-016", "JR-1002", "JR-0411", "JR-0412", "JR-0413", "JR-0414",
       title="権限: 窓口担当は職権処理・取消しができず、団体管理者は住民を見られない")
def role_limits(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    rid = made["resident_ids"][0]
    before = _resident(ctx, rid)
    attempts = (
        ("/changes/authority-entry", {"occurred_on": _day(ctx, 1), "reason": "職権記載",
                                      "address": _address(ctx), "members": [_person(Names(ctx))]}),
        ("/changes/authority-removal", {"resident_ids": [rid], "occurred_on": _day(ctx, 1),
                                        "reason": "実態調査"}),
        ("/changes/correction", {"resident_id": rid, "updates": {"given_kana": "ジロウ"},
                                 "reason": "誤記"}),
        ("/changes/cancellation", {"event_id": made["event_id"], "reason": "誤り"}),
    )
    for path, body in attempts:
        response = ctx.call("POST", path, "clerk", json=body)
        expect(response.status_code == 403, f"a counter clerk's {path}: expected 403, got "
               f"{response.status_code}")
    after = _resident(ctx, rid)
    expect(after.get("status") == "active" and after.get("given_kana") == before.get("given_kana"),
           "refused attempts changed nothing")
    for method, path in (("GET", f"/residents/{rid}"), ("GET", "/residents")):
        response = ctx.call(method, path, "admin", params={"name": n.family_kana})
        expect(response.status_code == 403, f"a municipality admin's {method} {path}: "
               f"expected 403, got {response.status_code}")
    response = ctx.call("POST", "/changes/move-in", "admin",
                        json=_move_in_body(ctx, [_person(Names(ctx))]))
    expect(response.status_code == 403, f"a municipality admin's move-in: {response.status_code}")
    settings = ctx.call("PATCH", f"/api/v1/municipalities/{ctx.home.lgcode}/settings", "clerk",
                        json={"certificate_fee": 300})
    expect(settings.status_code == 403, f"a clerk changing settings: {settings.status_code}")


# --- 3.3 suppression (抑止) ---------------------------------------------------------------------


@check("CT-REG-017", "JR-0301", title="支援措置の抑止を設定・一覧・終了できる(責任者のみ)")
def suppression_lifecycle(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    clerk_try = ctx.call("POST", "/suppressions", "clerk", json={
        "resident_id": rid, "reason": "DV等支援措置", "starts_on": _day(ctx)})
    if clerk_try.status_code in (404, 405, 501):
        ctx.ok(clerk_try, 201)  # raises NotImplementedHere for a missing route
    expect(clerk_try.status_code == 403, f"a clerk setting a suppression: {clerk_try.status_code}")
    made = _suppress(ctx, rid)
    sid = str(made.get("id"))
    listed = ctx.ok(ctx.call("GET", "/suppressions", "supervisor", params={"active": "true"}), 200)
    expect(any(s.get("id") == sid and s.get("resident_id") == rid for s in _list(listed)),
           "the suppression is listed")
    ctx.ok(ctx.call("POST", f"/suppressions/{sid}/end", "supervisor",
                    json={"reason": "支援措置の終了"}), (200, 201))
    listed = ctx.ok(ctx.call("GET", "/suppressions", "supervisor", params={"active": "true"}), 200)
    expect(not any(s.get("id") == sid for s in _list(listed)), "an ended suppression is inactive")


@check("CT-REG-018", "JR-0302", title="抑止中の住民の住民票の写しは通常の手順では交付されない")
def suppressed_certificate_refused(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    _suppress(ctx, rid)
    response = ctx.call("POST", "/certificates", "clerk", json={"resident_ids": [rid]})
    expect(not response.is_success, "a certificate of a suppressed resident was issued")
    ctx.refused(response, (403, 409, 422))
    expect(not _issued_for(ctx, rid), "nothing was issued")


@check("CT-REG-019", "JR-0303", title="抑止中の住民は検索・照会時に抑止中と表示される")
def suppression_alert(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    _suppress(ctx, rid)
    expect(_resident(ctx, rid).get("suppressed") is True, "the record shows suppressed: true")
    items = _search(ctx, name=n.family_kana).get("items", [])
    expect(any(i.get("id") == rid and i.get("suppressed") is True for i in items),
           "the search result shows suppressed: true")


# --- 3.4 changes ------------------------------------------------------------------------------


@check("CT-REG-020", "JR-0402", title="国外からの転入: 従前の住所なしで新たな住民票コードが記載される")
def move_in_from_abroad(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n, origin="abroad", previous_address="")
    got = _resident(ctx, made["resident_ids"][0])
    expect(_valid_code(got.get("juminhyo_code"), 11), "a new valid 住民票コード")
    expect(got.get("status") == "active", "an active record")
    expect(len(_history(ctx, made["resident_ids"][0])) == 1, "one change in the history")


def _other_resident(ctx: Context, n: Names) -> tuple[str, str]:
    """A one-person household in the other municipality: (resident id, 住民票コード)."""
    body = _move_in_body(ctx, [_person(n)], n, occurred_on=_day(ctx, 60),
                         notified_on=_day(ctx, 58),
                         address={"town_code": ctx.other.towns[0]["code"], "banchi": "1番地1"})
    made = ctx.ok(ctx.call("POST", "/changes/move-in", json=body, tenant=ctx.other), 201)
    rid = made["resident_ids"][0]
    got = ctx.ok(ctx.call("GET", f"/residents/{rid}", tenant=ctx.other), 200)
    return rid, str(got["juminhyo_code"])


def _move_out_to_home(ctx: Context, rid: str, planned: int, notified: int) -> dict[str, Any]:
    return ctx.ok(ctx.call("POST", "/changes/move-out", tenant=ctx.other, json={
        "resident_ids": [rid], "planned_on": _day(ctx, planned), "notified_on": _day(ctx, notified),
        "destination": "適合性検査市", "dest_lgcode": ctx.home.lgcode}), 201)


def _transfer_for(ctx: Context, code: str) -> str:
    response = ctx.call("GET", "/moveout-transfers", params={"juminhyo_code": code})
    ctx.ok(response, 200)
    transfers = _list(response.json())
    expect(len(transfers) == 1, f"the destination sees the move-out data sent ahead: {transfers}")
    return str(transfers[0]["id"])


@check("CT-REG-021", "JR-0403", "JR-0405", "JR-0702",
       title="転出証明書情報の送付と特例転入: 住民票コードを引き継ぎ、転出地の消除日は早い方")
def special_move_in(ctx: Context) -> None:
    n = Names(ctx)
    rid, code = _other_resident(ctx, n)
    out = _move_out_to_home(ctx, rid, planned=1, notified=6)
    certificates = out.get("moveout_certificates") or []
    expect(len(certificates) == 1 and certificates[0].get("juminhyo_code") == code,
           "the move-out produces 転出証明書 data with the 住民票コード")
    transfer = _transfer_for(ctx, code)
    made = ctx.ok(ctx.call("POST", "/changes/special-move-in", json={
        "transfer_id": transfer, "occurred_on": _day(ctx, 3), "notified_on": _day(ctx),
        "address": _address(ctx, 0, n)}), 201)
    arrived = _resident(ctx, made["resident_ids"][0])
    expect(arrived.get("juminhyo_code") == code, "the 住民票コード is carried over")
    expect(arrived.get("family_name") == n.family, "the person's items come from the data")
    departed = ctx.ok(ctx.call("GET", f"/residents/{rid}", tenant=ctx.other), 200)
    expect(departed.get("status") == "removed", "the departure's record is removed")
    expect(departed.get("removed_on") == _day(ctx, 3),
           f"the departure's record takes the earlier of the planned date and the move-in "
           f"date ({_day(ctx, 3)}), got {departed.get('removed_on')}")
    again = ctx.call("POST", "/changes/special-move-in", json={
        "transfer_id": transfer, "occurred_on": _day(ctx, 3), "notified_on": _day(ctx),
        "address": _address(ctx, 0, n)})
    _refused_naming(ctx, again, "transfer_id")


@check("CT-REG-022", "JR-0403", title="特例転入: 転出予定日から30日・転入から14日を過ぎた届出は拒否される")
def special_move_in_window(ctx: Context) -> None:
    for planned, moved, notified in ((40, 2, 0), (5, 20, 0)):
        n = Names(ctx)
        rid, code = _other_resident(ctx, n)
        _move_out_to_home(ctx, rid, planned=planned, notified=min(planned + 2, 50))
        transfer = _transfer_for(ctx, code)
        response = ctx.call("POST", "/changes/special-move-in", json={
            "transfer_id": transfer, "occurred_on": _day(ctx, moved),
            "notified_on": _day(ctx, notified), "address": _address(ctx, 0, n)})
        body = ctx.refused(response, (409, 422))
        expect(bool(_fields(body) & {"occurred_on", "notified_on", "transfer_id"}),
               f"the refusal names the date, named {_fields(body)}")
        expect(_search(ctx, juminhyo_code=code).get("total") == 0, "nothing was recorded")


@check("CT-REG-023", "JR-0404", title="転居: 世帯全員、または一部の世帯員が新しい世帯を構成して転居できる")
def relocation(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    new_address = _address(ctx, 1, n)
    ctx.ok(ctx.call("POST", "/changes/relocation", json={
        "household_id": household, "occurred_on": _day(ctx, 3), "notified_on": _day(ctx, 1),
        "address": new_address}), 201)
    hh = _household(ctx, household)
    expect(hh["address"].get("town_code") == new_address["town_code"], "the household moved")
    moved = _resident(ctx, spouse)
    expect(moved.get("address_since") == _day(ctx, 3), "住所を定めた年月日 is the change date")
    third = _address(ctx, 2, n)
    made = ctx.ok(ctx.call("POST", "/changes/relocation", json={
        "household_id": household, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1),
        "address": third, "member_ids": [spouse], "new_head_id": spouse}), 201)
    after = _resident(ctx, spouse)
    expect(after.get("household_id") != household, "the mover forms a new household")
    expect(after.get("relationship") == "世帯主", "the mover heads the new household")
    expect((after.get("address") or {}).get("town_code") == third["town_code"], "at the new address")
    expect(_resident(ctx, head).get("household_id") == household, "the head stays")
    expect(after.get("household_id") in made.get("household_ids", [after.get("household_id")]),
           "the change names the new household")


@check("CT-REG-024", "JR-0405", "JR-0416",
       title="転出: 予定日で消除され転出証明書データが作られ、除票は通常の異動の対象とならない")
def move_out(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    out = ctx.ok(ctx.call("POST", "/changes/move-out", json={
        "resident_ids": [spouse], "planned_on": _day(ctx, 1), "notified_on": _day(ctx, 2),
        "destination": "大阪府大阪市北区梅田1-1"}), 201)
    certificates = out.get("moveout_certificates") or []
    code = _resident(ctx, spouse).get("juminhyo_code")
    expect(len(certificates) == 1 and certificates[0].get("juminhyo_code") == code,
           "転出証明書 data for the one who leaves")
    gone = _resident(ctx, spouse)
    expect(gone.get("status") == "removed" and gone.get("removed_on") == _day(ctx, 1),
           "removed as of the planned date")
    expect(_resident(ctx, head).get("status") == "active", "the head stays")
    for path, body in (
            ("/changes/death", {"resident_id": spouse, "occurred_on": _day(ctx),
                                "notified_on": _day(ctx)}),
            ("/changes/move-out", {"resident_ids": [spouse], "planned_on": _day(ctx),
                                   "notified_on": _day(ctx), "destination": "京都府京都市"})):
        ctx.refused(ctx.call("POST", path, json=body), (409, 422))
    expect(_resident(ctx, spouse).get("removed_on") == _day(ctx, 1), "the 除票 is unchanged")
    expect(len(_household(ctx, household).get("members", [])) >= 1, "the household remains")


@check("CT-REG-025", "JR-0419", title="国外への転出: 転出先の国を記録して消除できる")
def move_out_abroad(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    ctx.ok(ctx.call("POST", "/changes/move-out", json={
        "resident_ids": [rid], "planned_on": _day(ctx), "notified_on": _day(ctx, 3),
        "destination": "アメリカ合衆国", "abroad": True}), 201)
    gone = _resident(ctx, rid)
    expect(gone.get("status") == "removed" and gone.get("removed_on") == _day(ctx),
           "removed as of the planned date")
    last = _history(ctx, rid)[-1]
    expect("アメリカ合衆国" in str(last.get("detail")), "the destination country is recorded")


@check("CT-REG-026", "JR-0406", title="出生: 子が世帯に加わり、住民票コードが記載される")
def birth(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    child = _person(n, "イチロウ", "一郎", relationship="子", birth_date=_day(ctx, 4))
    made = ctx.ok(ctx.call("POST", "/changes/birth", json={
        "household_id": household, "notified_on": _day(ctx, 1), "child": child}), 201)
    cid = made["resident_ids"][0]
    got = _resident(ctx, cid)
    expect(got.get("household_id") == household and got.get("relationship") == "子",
           "the child joins the household as 子")
    expect(_valid_code(got.get("juminhyo_code"), 11), "the child gets a valid 住民票コード")
    expect(got.get("resident_since") == _day(ctx, 4), "住民となった年月日 is the birth date")
    members = {m.get("id") for m in _household(ctx, household).get("members", [])}
    expect(members == {head, spouse, cid}, "the household has three members")


@check("CT-REG-027", "JR-0407", "JR-0417",
       title="死亡: 世帯主の死亡には新しい世帯主の指定が必要で、世帯主は常に一人")
def death_of_head(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    body = {"resident_id": head, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}
    _refused_naming(ctx, ctx.call("POST", "/changes/death", json=body), "remaining_head_id")
    expect(_resident(ctx, head).get("status") == "active", "a refused death changed nothing")
    ctx.ok(ctx.call("POST", "/changes/death", json={**body, "remaining_head_id": spouse}), 201)
    dead = _resident(ctx, head)
    expect(dead.get("status") == "removed" and dead.get("removed_on") == _day(ctx, 2),
           "the record is removed as of the date of death")
    hh = _household(ctx, household)
    expect(hh.get("head_id") == spouse, "the named member heads the household")
    heads = [m for m in hh.get("members", []) if m.get("relationship") == "世帯主"
             and m.get("status", "active") == "active"]
    expect([m.get("id") for m in heads] == [spouse], "exactly one head")


@check("CT-REG-028", "JR-0408", "JR-0409", "JR-0410", "JR-0417",
       title="世帯分離・世帯合併・世帯主変更: 各世帯の世帯主は常に一人")
def household_changes(ctx: Context) -> None:
    n = Names(ctx)
    child = _person(n, "イチロウ", "一郎", relationship="子", birth_date="2005-01-01")
    made = _move_in(ctx, [_person(n), _spouse(n), child], n)
    head, spouse, kid = made["resident_ids"]
    household = _resident(ctx, head)["household_id"]

    def one_head(household_id: str, expected: str) -> None:
        hh = _household(ctx, household_id)
        heads = [m.get("id") for m in hh.get("members", []) if m.get("relationship") == "世帯主"]
        expect(heads == [expected] and hh.get("head_id") == expected,
               f"household {household_id}: heads {heads}, head_id {hh.get('head_id')}")

    ctx.ok(ctx.call("POST", "/changes/household-split", json={
        "household_id": household, "member_ids": [kid], "new_head_id": kid,
        "occurred_on": _day(ctx, 4), "notified_on": _day(ctx, 3)}), 201)
    split = _resident(ctx, kid)["household_id"]
    expect(split != household, "世帯分離: the member forms a new household")
    one_head(split, kid)
    one_head(household, head)
    ctx.ok(ctx.call("POST", "/changes/household-merge", json={
        "household_id": household, "other_household_id": split, "relationships": {kid: "子"},
        "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}), 201)
    expect(_resident(ctx, kid)["household_id"] == household, "世帯合併: the member joins again")
    one_head(household, head)
    ctx.ok(ctx.call("POST", "/changes/head-change", json={
        "household_id": household, "new_head_id": spouse, "relationships": {head: "夫"},
        "occurred_on": _day(ctx, 1), "notified_on": _day(ctx)}), 201)
    one_head(household, spouse)
    expect(_resident(ctx, head).get("relationship") == "夫", "the former head's new relationship")
    # A head change that names no relationship for the former head is refused.
    _refused_naming(ctx, ctx.call("POST", "/changes/head-change", json={
        "household_id": household, "new_head_id": head, "relationships": {},
        "occurred_on": _day(ctx), "notified_on": _day(ctx)}), "relationships")
    one_head(household, spouse)


@check("CT-REG-029", "JR-0411", title="職権記載: 責任者が理由を記録して記載でき、理由は必須")
def authority_entry(ctx: Context) -> None:
    n = Names(ctx)
    body = {"occurred_on": _day(ctx, 10), "reason": "", "address": _address(ctx, 0, n),
            "members": [_person(n)]}
    _refused_naming(ctx, ctx.call("POST", "/changes/authority-entry", "supervisor", json=body),
                    "reason")
    _nobody(ctx, n, "supervisor")
    made = ctx.ok(ctx.call("POST", "/changes/authority-entry", "supervisor",
                           json={**body, "reason": "住所設定(実態調査)"}), 201)
    rid = made["resident_ids"][0]
    expect(_resident(ctx, rid).get("status") == "active", "the entry by authority is recorded")
    expect("住所設定" in str(_history(ctx, rid)[-1].get("detail")), "the reason is kept")


@check("CT-REG-030", "JR-0412", title="職権消除: 責任者が理由を記録して消除でき、理由は必須")
def authority_removal(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    body = {"resident_ids": [rid], "occurred_on": _day(ctx, 1), "reason": ""}
    _refused_naming(ctx, ctx.call("POST", "/changes/authority-removal", "supervisor", json=body),
                    "reason")
    expect(_resident(ctx, rid).get("status") == "active", "a refused removal changed nothing")
    ctx.ok(ctx.call("POST", "/changes/authority-removal", "supervisor",
                    json={**body, "reason": "実態調査により居住の事実なし"}), 201)
    gone = _resident(ctx, rid)
    expect(gone.get("status") == "removed" and gone.get("removed_on") == _day(ctx, 1),
           "removed by authority")


@check("CT-REG-031", "JR-0413", "JR-0416", title="職権修正: 記載事項を修正でき、除票も修正できる")
def correction(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, _ = _household_of_two(ctx, n)
    _refused_naming(ctx, ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": head, "updates": {"given_kana": "taro"}, "reason": "誤記"}),
        "updates.given_kana")
    ctx.ok(ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": head, "updates": {"given_kana": "タロ"}, "reason": "誤記の修正"}), 201)
    expect(_resident(ctx, head).get("given_kana") == "タロ", "the item is corrected")
    ctx.ok(ctx.call("POST", "/changes/death", json={
        "resident_id": spouse, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}), 201)
    ctx.ok(ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": spouse, "updates": {"birth_date": "1982-07-08"},
        "reason": "除票の生年月日の誤記"}), 201)
    removed = _resident(ctx, spouse)
    expect(removed.get("birth_date") == "1982-07-08" and removed.get("status") == "removed",
           "a 除票 is corrected and stays removed")


@check("CT-REG-032", "JR-0414", "JR-0418",
       title="異動の取消: 後続の異動がある間は拒否され、取消しで元の記録に戻る")
def cancellation(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    rid = made["resident_ids"][0]
    household = _resident(ctx, rid)["household_id"]
    original = _household(ctx, household)["address"]
    moved = ctx.ok(ctx.call("POST", "/changes/relocation", json={
        "household_id": household, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1),
        "address": _address(ctx, 1, n)}), 201)
    _refused_naming(ctx, ctx.call("POST", "/changes/cancellation", "supervisor", json={
        "event_id": made["event_id"], "reason": "誤入力"}), "event_id", (409, 422))
    _refused_naming(ctx, ctx.call("POST", "/changes/cancellation", "supervisor", json={
        "event_id": moved["event_id"], "reason": ""}), "reason")
    ctx.ok(ctx.call("POST", "/changes/cancellation", "supervisor", json={
        "event_id": moved["event_id"], "reason": "誤入力"}), 201)
    expect(_household(ctx, household)["address"] == original, "the relocation is undone")
    history = _history(ctx, rid)
    cancelled = next((e for e in history if e.get("id") == moved["event_id"]), None)
    expect(cancelled is not None and bool(cancelled.get("cancelled_by")),
           "the cancelled change stays in the history, marked")
    ctx.ok(ctx.call("POST", "/changes/cancellation", "supervisor", json={
        "event_id": made["event_id"], "reason": "誤入力"}), 201)
    expect(_search(ctx, name=n.family_kana).get("total") == 0,
           "cancelling the move-in leaves no resident")


@check("CT-REG-033", "JR-0415", "JR-1102", title="14日を過ぎた届出は拒否されず届出期間経過として記録される")
def late_notice_flagged(ctx: Context) -> None:
    n = Names(ctx)
    late = _move_in(ctx, [_person(n)], n, occurred_on=_day(ctx, 20), notified_on=_day(ctx))
    expect(late.get("late_notice") is True, "a notice 20 days late is flagged in the answer")
    event = _history(ctx, late["resident_ids"][0])[-1]
    expect(event.get("late_notice") is True, "the flag is kept with the change")
    n2 = Names(ctx)
    timely = _move_in(ctx, [_person(n2)], n2, occurred_on=_day(ctx, 14), notified_on=_day(ctx))
    expect(timely.get("late_notice") is False, "a notice on day 14 is in time")


@check("CT-REG-034", "JR-0420", title="個人番号の変更: 新しい番号が記載され、変更前は履歴に残る")
def my_number_change(ctx: Context) -> None:
    n = Names(ctx)
    first, second = _new_my_number(), _new_my_number()
    rid = _move_in(ctx, [_person(n, my_number=first)], n, "supervisor")["resident_ids"][0]
    ctx.ok(ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": rid, "updates": {"my_number": second}, "reason": "個人番号の変更"}), 201)
    expect(_resident(ctx, rid, "supervisor").get("my_number") == second, "the new number")
    history = ctx.call("GET", f"/residents/{rid}/history", "supervisor")
    ctx.ok(history, 200)
    expect(first in history.text and second in history.text, "the history keeps both numbers")


@check("CT-REG-035", "JR-0421", title="住民票コードの変更請求: 新しい有効なコードが記載される")
def juminhyo_code_change(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    old = _resident(ctx, rid)["juminhyo_code"]
    ctx.ok(ctx.call("POST", "/changes/juminhyo-code-change", json={
        "resident_id": rid, "notified_on": _day(ctx), "reason": "本人の請求"}), 201)
    new = _resident(ctx, rid).get("juminhyo_code")
    expect(_valid_code(new, 11) and new != old, f"a new valid code, got {new}")
    expect(_search(ctx, juminhyo_code=old).get("total") == 0, "the old code no longer finds it")


@check("CT-REG-036", "JR-0422", title="外国人住民の在留資格・在留期間・在留カード番号の変更を記載できる")
def foreign_status_update(ctx: Context) -> None:
    n = Names(ctx)
    foreign = {"nationality": "フィリピン", "residence_status": "留学", "period": "1年",
               "expiry": (ctx.today + timedelta(days=200)).isoformat(),
               "card_number": f"EF{n.number % 10**8:08d}GH", "category": "中長期在留者"}
    rid = _move_in(ctx, [_person(n, foreign=foreign)], n, origin="abroad",
                   previous_address="")["resident_ids"][0]
    updated = {**foreign, "residence_status": "技術・人文知識・国際業務", "period": "5年",
               "expiry": (ctx.today + timedelta(days=1800)).isoformat(),
               "card_number": f"IJ{n.number % 10**8:08d}KL"}
    response = ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": rid, "updates": {"foreign": updated}, "reason": "在留資格変更の通知"})
    ctx.ok(response, 201)
    got = _resident(ctx, rid).get("foreign") or {}
    for key in ("residence_status", "period", "expiry", "card_number"):
        expect(got.get(key) == updated[key], f"foreign.{key}: {got.get(key)!r}")


# --- 3.5 certificates --------------------------------------------------------------------------


@check("CT-REG-037", "JR-0501", "JR-0503", title="住民票の写し(世帯連記式)をPDFで交付し、発行番号を記録する")
def certificate_household(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, _ = _household_of_two(ctx, n)
    serial = _expect_pdf(ctx, ctx.call("POST", "/certificates", json={
        "resident_ids": [head, spouse], "form": "household"}))
    again = _expect_pdf(ctx, ctx.call("POST", "/certificates", json={"resident_ids": [head]}))
    expect(serial != again, "each certificate has its own serial")
    issued = {str(c.get("serial")): c for c in _certificates(ctx)}
    expect(serial in issued and again in issued, "issued certificates are listed by serial")
    expect(set(issued[serial].get("resident_ids", [])) == {head, spouse},
           "the record names the residents on the certificate")
    expect(bool(issued[serial].get("issued_at")) and bool(issued[serial].get("issued_by")),
           "the record keeps when and by whom")


@check("CT-REG-038", "JR-0501", "JR-0104",
       title="個人票と省略項目の選択、窓口担当は個人番号入りの写しを交付できない")
def certificate_options(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n, my_number=_new_my_number(), honseki="東京都千代田区",
                                 hittosha=n.family)], n, "supervisor")["resident_ids"][0]
    _expect_pdf(ctx, ctx.call("POST", "/certificates", json={
        "resident_ids": [rid], "form": "individual", "head_and_relationship": False,
        "honseki": True, "juminhyo_code": True}))
    before = len(_issued_for(ctx, rid))
    denied = ctx.call("POST", "/certificates", "clerk", json={"resident_ids": [rid],
                                                              "my_number": True})
    expect(denied.status_code == 403, f"a clerk's copy with the 個人番号: {denied.status_code}")
    expect(len(_issued_for(ctx, rid)) == before, "nothing was issued")
    _expect_pdf(ctx, ctx.call("POST", "/certificates", "supervisor", json={
        "resident_ids": [rid], "my_number": True}))
    n2 = Names(ctx)
    other = _move_in(ctx, [_person(n2)], n2)["resident_ids"][0]
    _refused_naming(ctx, ctx.call("POST", "/certificates", json={
        "resident_ids": [rid, other], "form": "household"}), "resident_ids")


@check("CT-REG-039", "JR-0502", title="除票の写しを交付でき、除票と現存の住民票は取り違えない")
def certificate_joshu(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, _ = _household_of_two(ctx, n)
    ctx.ok(ctx.call("POST", "/changes/death", json={
        "resident_id": spouse, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}), 201)
    _expect_pdf(ctx, ctx.call("POST", "/certificates", json={"resident_ids": [spouse],
                                                              "kind": "joshu"}))
    ctx.refused(ctx.call("POST", "/certificates", json={"resident_ids": [spouse],
                                                         "kind": "juminhyo"}))
    ctx.refused(ctx.call("POST", "/certificates", json={"resident_ids": [head], "kind": "joshu"}))


@check("CT-REG-040", "JR-0504", title="標準オプション: 住民票の写しの既定の様式を選択できる")
def certificate_default_form(ctx: Context) -> None:
    path = f"/api/v1/municipalities/{ctx.home.lgcode}/settings"
    response = ctx.call("PATCH", path, "admin", json={"certificate_default_form": "individual"})
    if response.status_code in (400, 422):
        raise NotImplementedHere("the setting certificate_default_form is not offered")
    try:
        ctx.ok(response, 200)
        n = Names(ctx)
        head, _, _ = _household_of_two(ctx, n)
        serial = _expect_pdf(ctx, ctx.call("POST", "/certificates", json={"resident_ids": [head]}))
        issued = {str(c.get("serial")): c for c in _certificates(ctx)}
        form = issued.get(serial, {}).get("form") or (issued.get(serial, {}).get("options")
                                                      or {}).get("form")
        expect(form == "individual", f"the default form is the municipality's choice: {form}")
        ctx.refused(ctx.call("PATCH", path, "admin", json={"certificate_default_form": "custom"}))
    finally:
        ctx.call("PATCH", path, "admin", json={"certificate_default_form": "household"})


@check("CT-REG-041", "JR-0505", title="本人等以外の者の申出による写しを、申出者と目的を記録して交付できる")
def certificate_third_party(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    response = ctx.call("POST", "/certificates", json={
        "resident_ids": [rid], "requester": {
            "kind": "third_party", "name": "適合 債権者", "purpose": "債権回収のため"}})
    _unknown_field_is_missing(ctx, response, {"requester", "requester.kind"},
                              "third-party requests")
    serial = _expect_pdf(ctx, response)
    issued = {str(c.get("serial")): c for c in _certificates(ctx)}
    requester = issued.get(serial, {}).get("requester") or {}
    expect(requester.get("kind") == "third_party" and bool(requester.get("purpose")),
           "the requester and purpose are recorded with the certificate")


@check("CT-REG-042", "JR-0506", title="住民票記載事項証明書を、請求された事項のみで交付できる")
def certificate_kisai_jiko(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    response = ctx.call("POST", "/certificates", json={
        "resident_ids": [rid], "kind": "kisai_jiko",
        "items": ["person.family_name", "person.given_name", "person.birth_date"]})
    _unknown_field_is_missing(ctx, response, {"kind", "items"}, "住民票記載事項証明書")
    _expect_pdf(ctx, response)


# --- 3.6 statistics ----------------------------------------------------------------------------


@check("CT-REG-043", "JR-0601", title="町字別・男女別・年齢階級別の人口と世帯数を集計できる")
def population_statistics(ctx: Context) -> None:
    n = Names(ctx)
    _household_of_two(ctx, n)
    stats = ctx.ok(ctx.call("GET", "/statistics/population", params={"as_of": _day(ctx)}), 200)
    town = ctx.home.towns[0]["code"]
    rows = [r for r in _list(stats.get("towns", [])) if r.get("town_code") == town]
    expect(len(rows) == 1, f"one row for town {town}")
    row = rows[0]
    expect(int(row.get("male", 0)) >= 1 and int(row.get("female", 0)) >= 1,
           "the town counts our man and woman")
    expect(int(row.get("households", 0)) >= 1, "the town counts households")
    expect(bool(stats.get("age_bands")), "the statistics hold age bands")


@check("CT-REG-044", "JR-0602", title="期間の異動件数を異動事由別に集計できる")
def change_statistics(ctx: Context) -> None:
    n = Names(ctx)
    _move_in(ctx, [_person(n)], n)
    stats = ctx.ok(ctx.call("GET", "/statistics/changes", params={
        "from": _day(ctx, 30), "to": _day(ctx)}), 200)
    counts = stats.get("counts") or {}
    expect(int(counts.get("move_in", 0)) >= 1, f"move-ins are counted: {counts}")


# --- 3.7 integration ---------------------------------------------------------------------------


@check("CT-REG-045", "JR-0701", title="住基ネットへの本人確認情報の更新通知データが作られる")
def juki_net_notifications(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    code = _resident(ctx, rid)["juminhyo_code"]
    feed = ctx.ok(ctx.call("GET", "/integration/juki-net/notifications", "supervisor",
                           params={"since": _day(ctx, 1)}), 200)
    expect(any(item.get("juminhyo_code") == code for item in _list(feed)),
           "the move-in is notified with the 住民票コード")


@check("CT-REG-046", "JR-0703", title="他業務システムが異動情報を標準APIで取得できる")
def change_feed(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    feed = ctx.ok(ctx.call("GET", "/integration/changes", "supervisor",
                           params={"since": _day(ctx, 1)}), 200)
    events = [e for e in _list(feed) if e.get("event_id", e.get("id")) == made["event_id"]]
    expect(len(events) == 1, "the change is in the feed")
    expect(set(made["resident_ids"]) <= set(events[0].get("resident_ids", [])),
           "the feed names the residents the change concerns")


@check("CT-REG-047", "JR-0704", title="本籍地への附票記載のための通知データが作られる")
def fuhyo_notifications(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n, honseki="北海道札幌市中央区北一条西二丁目",
                                 hittosha=n.family)], n)["resident_ids"][0]
    feed = ctx.ok(ctx.call("GET", "/integration/fuhyo-notifications", "supervisor",
                           params={"since": _day(ctx, 1)}), 200)
    expect(any(item.get("resident_id") == rid for item in _list(feed)),
           "the move-in of a resident with a 本籍 is notified")


# --- 3.9 batch ---------------------------------------------------------------------------------


@check("CT-REG-048", "JR-0901", title="在留期間を経過した外国人住民を一括で抽出できる")
def residence_expired_report(ctx: Context) -> None:
    n = Names(ctx)
    foreign = {"nationality": "ブラジル", "residence_status": "定住者", "period": "1年",
               "expiry": _day(ctx, 10), "card_number": f"MN{n.number % 10**8:08d}OP",
               "category": "中長期在留者"}
    rid = _move_in(ctx, [_person(n, foreign=foreign)], n, origin="abroad",
                   previous_address="", occurred_on=_day(ctx, 30),
                   notified_on=_day(ctx, 29))["resident_ids"][0]
    report = ctx.ok(ctx.call("GET", "/reports/residence-expired", "supervisor",
                             params={"as_of": _day(ctx)}), 200)
    expect(any(item.get("resident_id", item.get("id")) == rid for item in _list(report)),
           "the resident whose period has expired is listed")


@check("CT-REG-049", "JR-0902", title="指定日の異動者一覧を作成できる")
def daily_change_report(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    report = ctx.ok(ctx.call("GET", "/reports/daily-changes", "supervisor",
                             params={"on": _day(ctx)}), 200)
    expect(any(item.get("event_id", item.get("id")) == made["event_id"] for item in _list(report)),
           "today's change is listed")


# --- 3.10 common functions ---------------------------------------------------------------------


@check("CT-REG-050", "JR-1001", title="標準移行レイアウトで出力でき、誤りのある取込は一件も取り込まない")
def migration_layout(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    export = ctx.call("GET", "/migration/export", "supervisor", params={"format": "jsonl"})
    ctx.ok(export, 200)
    expect(rid in export.text, "the export holds the resident")
    denied = ctx.call("GET", "/migration/export", "clerk", params={"format": "jsonl"})
    expect(denied.status_code == 403, f"a clerk's export: {denied.status_code}")
    bad = export.text.replace(n.family_kana, "not-kana", 1)
    n2 = Names(ctx)
    bad += "\n" + export.text.splitlines()[-1].replace(n.family_kana, n2.family_kana)
    response = ctx.client.post(
        f"{ctx.base()}/migration/import", content=bad.encode("utf-8"),
        headers={**ctx.home.auth("supervisor"), "Content-Type": "application/x-ndjson"})
    ctx.refused(response, (400, 409, 422))
    _nobody(ctx, n2)


@check("CT-REG-051", "JR-1004", title="条件と項目を指定してCSVでデータを抽出できる")
def data_extraction(ctx: Context) -> None:
    n = Names(ctx)
    _move_in(ctx, [_person(n)], n)
    response = ctx.call("POST", "/extracts", "supervisor", json={
        "conditions": {"name": n.family_kana}, "format": "csv",
        "columns": ["person.family_name", "person.family_kana", "person.birth_date"]})
    ctx.ok(response, (200, 201))
    expect(response.headers.get("content-type", "").startswith("text/csv"), "the extract is CSV")
    lines = response.text.strip().splitlines()
    expect(len(lines) == 2 and n.family_kana in lines[1], f"a header and one row: {lines[:3]}")


@check("CT-REG-052", "JR-1005", title="照会・交付のアクセスログを権限のある職員が検索できる")
def access_log(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    _resident(ctx, rid)
    log = ctx.ok(ctx.call("GET", "/access-log", "admin", params={"resident_id": rid}), 200)
    actions = {str(e.get("action")) for e in _list(log)}
    expect("read" in actions, f"reading the record is logged: {actions}")
    expect(all(e.get("staff") or e.get("actor") for e in _list(log)), "each entry names the staff")
    denied = ctx.call("GET", "/access-log", "clerk", params={"resident_id": rid})
    expect(denied.status_code == 403, f"a clerk reading the access log: {denied.status_code}")


@check("CT-REG-053", "JR-1006", title="町字マスタをCSVで検証して一括で取り込める")
def csv_import(ctx: Context) -> None:
    n = Names(ctx)
    towns = list(ctx.home.towns)
    code = f"09{n.number % 10**5:05d}"
    rows = ["code,name,name_kana"] + [f"{t['code']},{t['name']},{t.get('name_kana', '')}"
                                      for t in towns] + [f"{code},取込町{n.kanji_tag},トリコミチョウ"]
    url = f"{ctx.base()}/imports/towns"
    headers = {**ctx.home.auth("admin"), "Content-Type": "text/csv; charset=utf-8"}
    bad = ctx.client.post(url, content=("\n".join([*rows, "9999999,"]) + "\n").encode(),
                          headers=headers)
    ctx.refused(bad, (400, 422))
    listed = ctx.ok(ctx.call("GET", f"/api/v1/municipalities/{ctx.home.lgcode}/towns", "admin"), 200)
    expect(code not in str(listed), "a refused import changed nothing")
    ctx.ok(ctx.client.post(url, content=("\n".join(rows) + "\n").encode(), headers=headers),
           (200, 201))
    listed_response = ctx.call("GET", f"/api/v1/municipalities/{ctx.home.lgcode}/towns", "admin")
    ctx.ok(listed_response, 200)
    expect(code in listed_response.text, "the imported town is in the master")


# --- 3.11 errors -------------------------------------------------------------------------------


@check("CT-REG-059", "JR-0417", "JR-1101", title="新しい世帯の世帯主が一人でない転入は拒否される")
def one_head_on_move_in(ctx: Context) -> None:
    n = Names(ctx)
    two_heads = [_person(n), _spouse(n, relationship="世帯主")]
    no_head = [_spouse(n)]
    for members in (two_heads, no_head):
        _refused_naming(ctx, ctx.call("POST", "/changes/move-in",
                                      json=_move_in_body(ctx, members, n)), "members")
    _nobody(ctx, n)


# --- not allowed (実装不可) ----------------------------------------------------------------------


@check("CT-REG-054", "JR-1901", title="実装不可: 標準にない独自の項目・設定は受け付けない")
def custom_items_refused(ctx: Context) -> None:
    n = Names(ctx)
    for body in (_move_in_body(ctx, [_person(n)], n, custom_field="独自"),
                 _move_in_body(ctx, [_person(n, blood_type="A")], n),
                 _move_in_body(ctx, [_person(n)], n,
                               address={**_address(ctx), "district_code": "X1"})):
        response = ctx.call("POST", "/changes/move-in", json=body)
        _absent_or_refused(response, "a move-in with a custom item")
        expect(response.status_code in (400, 422), f"a custom item is refused as bad input, "
               f"got {response.status_code}")
    _nobody(ctx, n)
    settings = ctx.call("PATCH", f"/api/v1/municipalities/{ctx.home.lgcode}/settings", "admin",
                        json={"custom_item_label": "独自項目"})
    _absent_or_refused(settings, "a custom municipality setting")
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    response = ctx.call("POST", "/changes/correction", "supervisor", json={
        "resident_id": rid, "updates": {"blood_type": "A"}, "reason": "独自項目"})
    _absent_or_refused(response, "a correction of a custom item")
    expect("blood_type" not in _resident(ctx, rid, "supervisor"), "no custom item was stored")


@check("CT-REG-055", "JR-1903", title="実装不可: 住民票・除票・世帯を物理削除できない")
def no_physical_deletion(ctx: Context) -> None:
    n = Names(ctx)
    head, spouse, household = _household_of_two(ctx, n)
    ctx.ok(ctx.call("POST", "/changes/death", json={
        "resident_id": spouse, "occurred_on": _day(ctx, 2), "notified_on": _day(ctx, 1)}), 201)
    for role in ("clerk", "supervisor", "admin"):
        for path in (f"/residents/{head}", f"/residents/{spouse}", f"/households/{household}"):
            _absent_or_refused(ctx.call("DELETE", path, role), f"DELETE {path} by {role}")
    expect(_resident(ctx, head).get("status") == "active", "the record is still there")
    expect(_resident(ctx, spouse).get("status") == "removed", "the 除票 is still there")
    expect(bool(_household(ctx, household).get("members")), "the household is still there")


@check("CT-REG-056", "JR-1904", title="実装不可: 第三者の申出による写しに個人番号を記載できない")
def no_my_number_for_third_party(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n, my_number=_new_my_number())], n,
                   "supervisor")["resident_ids"][0]
    response = ctx.call("POST", "/certificates", "supervisor", json={
        "resident_ids": [rid], "my_number": True, "requester": {
            "kind": "third_party", "name": "適合 第三者", "purpose": "相続手続"}})
    _absent_or_refused(response, "a third party's copy with the 個人番号")
    expect(not _issued_for(ctx, rid, "supervisor"), "nothing was issued")


@check("CT-REG-057", "JR-1905", title="実装不可: 異動履歴を削除・書換えできない")
def history_immutable(ctx: Context) -> None:
    n = Names(ctx)
    made = _move_in(ctx, [_person(n)], n)
    rid = made["resident_ids"][0]
    before = _history(ctx, rid)
    event = made["event_id"]
    for method, path in (("DELETE", f"/residents/{rid}/history"),
                         ("DELETE", f"/residents/{rid}/history/{event}"),
                         ("PUT", f"/residents/{rid}/history/{event}"),
                         ("PATCH", f"/residents/{rid}/history/{event}"),
                         ("DELETE", f"/changes/{event}"),
                         ("PATCH", f"/changes/{event}")):
        for role in ("supervisor", "admin"):
            _absent_or_refused(ctx.call(method, path, role, json={"occurred_on": _day(ctx, 1)}
                                        if method != "DELETE" else None),
                               f"{method} {path} by {role}")
    expect(_history(ctx, rid) == before, "the history is unchanged")


@check("CT-REG-058", "JR-1906", title="実装不可: 標準様式以外の独自レイアウトの証明書は交付できない")
def no_custom_certificate_layout(ctx: Context) -> None:
    n = Names(ctx)
    rid = _move_in(ctx, [_person(n)], n)["resident_ids"][0]
    for body in ({"resident_ids": [rid], "form": "municipal_custom"},
                 {"resident_ids": [rid], "template": "独自様式A"},
                 {"resident_ids": [rid], "layout": {"paper": "B5", "columns": ["氏名"]}}):
        _absent_or_refused(ctx.call("POST", "/certificates", json=body),
                           "a certificate in a custom layout")
    _absent_or_refused(ctx.call("PATCH", f"/api/v1/municipalities/{ctx.home.lgcode}/settings",
                                "admin", json={"certificate_template": "独自様式A"}),
                       "a custom certificate template setting")
    expect(not _issued_for(ctx, rid), "nothing was issued")

