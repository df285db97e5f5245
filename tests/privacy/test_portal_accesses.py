"""Issue 9 part 1: a resident signed in to the portal with a (virtual) My Number card sees who
read their record (department and role, never a name), when, which items, why, and the
flagged reads outside a reader's purposes with the reason; never another resident's records.
Over real HTTP (the portal is an OpenID Connect relying party of Kiban's own provider), on
SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from kiban.identity import linking, oidc, portal, service, testca
from kiban.web.app import create_app
from kiban_testkit import LG_A, World, bearer, move_in_data, person, serve
from privacy.kit import make_staff

API = f"/api/v1/municipalities/{LG_A}"
REASON = "税務課からの照会(文書番号 R8-77)に回答するため"


@dataclass
class Live:
    url: str
    http: httpx.Client
    world: World
    card: testca.Card
    own: str  # the card holder's resident id
    other: str  # another resident of the same municipality


def _sign(card: testca.Card, text: str) -> str:
    return base64.b64encode(card.auth_key.sign(text.encode(), padding.PKCS1v15(),
                                               hashes.SHA256())).decode()


@pytest.fixture
def live(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca"))
    svc = world.svc
    make_staff(world, "clerk-p", ["counter_clerk"], department="市民課")
    make_staff(world, "clerk-q", ["counter_clerk"], department="別館窓口課")
    own = svc.registry.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"][0]
    other = svc.registry.move_in(world.clerk_a, LG_A, move_in_data(
        address={"town_code": "0002001", "banchi": "3番地", "katagaki": ""},
        members=[person(family_name="鷲尾", family_kana="ワシオ", birth_date="1970-01-02")]
    ))["resident_ids"][0]
    pki = service.TestPki(tmp_path / "ca", "test", svc.clock)
    pki.init()
    card = pki.issue_card(LG_A, "r", "山田 太郎", "東京都千代田区本町一丁目1番地2 メゾン101",
                          "1980-05-05", "1", "1234")
    links = linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, "test")
    auth = card.auth_cert.public_bytes(serialization.Encoding.DER)
    assert links.link_card(LG_A, auth, testca.sign_detached(auth, card.signing_cert,
                                                            card.signing_key)).linked
    app = create_app(world.backend.settings, svc.clock, svc.db)
    with serve(app) as url, httpx.Client(base_url=url, timeout=20) as http:
        yield Live(url, http, world, card, own, other)


def login(live: Live) -> httpx.Response:
    started = live.http.get("/portal/login", follow_redirects=True)
    assert started.status_code == 200, started.text
    found = re.search(r'id="challenge" value="([^"]+)"', started.text)
    assert found, started.text
    challenge = html.unescape(found.group(1))
    done = live.http.post("/oidc/authorize/answer", follow_redirects=True, data={
        "challenge": challenge, "signature": _sign(live.card, challenge),
        "certificate": live.card.auth_cert.public_bytes(serialization.Encoding.PEM).decode()})
    assert done.status_code == 200 and 'id="portal-accesses"' in done.text, done.text
    return done


def staff_reads(live: Live) -> None:
    """Two ordinary reads and one flagged read of the card holder; reads of the other resident
    by a department that never reads the card holder."""
    p = bearer(live.http, "clerk-p")
    q = bearer(live.http, "clerk-q")
    assert live.http.get(f"{API}/residents/{live.own}", headers=p).status_code == 200
    assert live.http.get(f"{API}/residents/{live.own}/history", headers=p).status_code == 200
    flagged = live.http.get(f"{API}/residents/{live.own}", headers={
        **p, "X-Kiban-Purpose": "tax_assessment", "X-Kiban-Access-Reason": quote(REASON)})
    assert flagged.status_code == 200
    for _ in range(2):
        assert live.http.get(f"{API}/residents/{live.other}", headers=q).status_code == 200


def rows(page: str) -> list[str]:
    body = page.split('<table id="accesses">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], re.S)


def test_the_resident_sees_their_own_accesses_and_no_one_elses(live: Live) -> None:
    staff_reads(live)
    login(live)
    page = live.http.get("/portal/accesses", params={"lang": "ja"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    entries = rows(page.text)
    assert len(entries) == 3  # the card holder's three reads, and nothing else
    text = page.text
    assert "市民課" in text and "窓口担当" in text and "住民基本台帳事務" in text
    assert "氏名" in text and "生年月日" in text  # which items
    assert "2026-04-01 10:00" in text  # when, in Japan time
    flagged = [e for e in entries if 'class="flagged"' in e]
    assert len(flagged) == 1 and "個人住民税の賦課" in flagged[0] and html.escape(REASON) in flagged[0]
    # who by department and role, never by name or account
    assert "clerk-p" not in text and "clerk-p 職員" not in text and "id-" not in text
    # the other resident's reads (by a department that read only them) never show
    assert "別館窓口課" not in text and live.other not in text and "鷲尾" not in text

    english = live.http.get("/portal/accesses", params={"lang": "en"})
    assert english.status_code == 200
    assert "Counter clerk" in english.text and "Resident registration" in english.text
    assert "Outside the reader&#39;s purposes" in english.text or "Outside the reader's" in english.text
    assert "Date of birth" in english.text


def test_the_page_pages_and_refuses_without_a_session(live: Live) -> None:
    signed_out = live.http.get("/portal/accesses")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/portal"
    login(live)
    empty = live.http.get("/portal/accesses", params={"lang": "ja"})
    assert empty.status_code == 200 and 'id="accesses-none"' in empty.text
    for bad in ("0", "x", "-3"):
        assert live.http.get("/portal/accesses", params={"page": bad}).status_code == 422
    p = bearer(live.http, "clerk-p")
    for _ in range(51):
        live.http.get(f"{API}/residents/{live.own}", headers=p)
    first = live.http.get("/portal/accesses")
    assert len(rows(first.text)) == 50 and 'id="accesses-next"' in first.text
    second = live.http.get("/portal/accesses", params={"page": 2})
    assert len(rows(second.text)) == 1 and 'id="accesses-next"' not in second.text


def _sealed(live: Live, data: dict[str, object]) -> str:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(services=live.world.svc)))
    return portal.seal(request, data, 600)  # type: ignore[arg-type]


def test_a_session_that_names_no_record_or_a_forged_one_shows_nothing(live: Live) -> None:
    staff_reads(live)
    secret = live.world.svc.settings.secret_key
    cases: list[dict[str, object]] = [
        {"sub": "x" * 40, "name": "外部 太郎"},  # another provider: no reference
        {"sub": "x" * 40, oidc.RESIDENT_CLAIM: f"{LG_A}.{live.own}.forged"},
        {"sub": "x" * 40, oidc.RESIDENT_CLAIM: oidc.resident_ref(secret + "x", LG_A, live.own)},
    ]
    for claims in cases:
        live.http.cookies.set(portal.SESSION_COOKIE, _sealed(live, claims), path="/portal")
        page = live.http.get("/portal/accesses", params={"lang": "ja"})
        assert page.status_code == 403 and 'id="accesses-not-own"' in page.text
        assert "市民課" not in page.text
    # a cookie whose seal does not verify is no session at all
    live.http.cookies.set(portal.SESSION_COOKIE, "e30.AAAA", path="/portal")
    assert live.http.get("/portal/accesses").status_code == 303
    # the reference is for this deployment's own portal: other clients' claims lack it
    assert oidc.open_resident_ref(secret, oidc.resident_ref(secret, LG_A, live.own)) == (
        LG_A, live.own)
