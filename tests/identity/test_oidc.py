"""Part 5: Kiban as an OpenID Connect provider (login with the card's authentication
certificate by challenge-response) and the resident portal as its relying party, driven over
real HTTP (uvicorn + httpx), on SQLite and PostgreSQL; and every bad input the issue names."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from identity_world import IdWorld, reuse_keys

from kiban.core.clock import FixedClock
from kiban.identity import jose, linking, oidc, rp, service, testca
from kiban.web.app import create_app
from kiban_testkit import LG_A, move_in_data, serve

ADDRESS = "東京都千代田区本町一丁目1番地2 メゾン101"
VERIFIER = "v" * 10 + "-the-code-verifier-of-this-test-43-chars-at-least"


@dataclass
class Live:
    url: str
    http: httpx.Client
    pki: service.TestPki
    card: testca.Card
    world: IdWorld

    @property
    def redirect_uri(self) -> str:
        return f"{self.url}/portal/callback"


def new_card(pki: service.TestPki, **overrides: str) -> testca.Card:
    data = {"name": "山田 太郎", "address": ADDRESS, "birth_date": "1980-05-05", "sex": "1", **overrides}
    return pki.issue_card(LG_A, "r", data["name"], data["address"], data["birth_date"], data["sex"], "1234")


@pytest.fixture
def live(id_world: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """On SQLite: the bad-input paths do not depend on the database."""
    yield from _live(id_world, tmp_path, monkeypatch)


@pytest.fixture
def live_any(id_world_any: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """On SQLite and PostgreSQL: the flow and the single-use guarantees the database keeps."""
    yield from _live(id_world_any, tmp_path, monkeypatch)


def _live(world: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    reuse_keys(monkeypatch)
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca"))
    svc = world.svc
    pki = service.TestPki(tmp_path / "ca", "test", svc.clock)
    pki.init()
    svc.registry.move_in(world.clerk_a, LG_A, move_in_data())
    card = new_card(pki)
    links = linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, "test")
    auth = card.auth_cert.public_bytes(serialization.Encoding.DER)
    assert links.link_card(LG_A, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key)).linked
    app = create_app(world.backend.settings, svc.clock, svc.db)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Live(url, http, pki, card, world)


def authorize_params(live: Live, **overrides: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": oidc.PORTAL_CLIENT, "redirect_uri": live.redirect_uri,
              "scope": "openid name address birthdate gender", "state": "st-1", "nonce": "n-0S6_WzA2Mj",
              "code_challenge": oidc.s256(VERIFIER), "code_challenge_method": "S256"}
    params.update(overrides)
    return params


def challenge_of(page: str) -> str:
    found = re.search(r'id="challenge" value="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def sign(card: testca.Card, text: str) -> str:
    return base64.b64encode(card.auth_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def answer(live: Live, card: testca.Card | None = None, *, tamper: bool = False,
           challenge: str | None = None) -> httpx.Response:
    card = card or live.card
    if challenge is None:
        page = live.http.get("/oidc/authorize", params=authorize_params(live))
        assert page.status_code == 200, page.text
        challenge = challenge_of(page.text)
    signature = sign(card, challenge + ("x" if tamper else ""))
    return live.http.post("/oidc/authorize/answer", data={
        "challenge": challenge, "signature": signature,
        "certificate": card.auth_cert.public_bytes(serialization.Encoding.PEM).decode()})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def token(live: Live, code: str, **overrides: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": live.redirect_uri,
            "client_id": oidc.PORTAL_CLIENT, "code_verifier": VERIFIER, **overrides}
    return live.http.post("/oidc/token", data=form)


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400
    found = re.search(r'data-reason="([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)


def test_discovery_and_jwks(live: Live) -> None:
    meta = live.http.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == live.url and meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["scopes_supported"]) == {"openid", "name", "address", "birthdate", "gender"}
    keys = live.http.get(urlsplit(meta["jwks_uri"]).path).json()["keys"]
    assert keys[0]["kty"] == "EC" and keys[0]["alg"] == "ES256" and "d" not in keys[0]


def test_login_issues_a_verifiable_id_token_and_userinfo(live_any: Live) -> None:
    issued = token(live_any, code_of(answer(live_any)))
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert issued.headers["cache-control"] == "no-store"
    party = rp.RelyingParty(live_any.url, oidc.PORTAL_CLIENT, live_any.redirect_uri, live_any.world.svc.clock)
    claims = party.validate_id_token(body["id_token"], "n-0S6_WzA2Mj")
    assert claims["name"] == "山田 太郎" and claims["birthdate"] == "1980-05-05" and claims["gender"] == "male"
    assert claims["address"]["formatted"] == "東京都千代田区本町一丁目1番地2 メゾン101"
    assert claims["aud"] == oidc.PORTAL_CLIENT and len(claims["sub"]) == 40
    info = live_any.http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    with pytest.raises(rp.RelyingPartyError):
        party.validate_id_token(body["id_token"], "another-nonce")
    forged = body["id_token"][:-4] + ("AAAA" if not body["id_token"].endswith("AAAA") else "BBBB")
    with pytest.raises(rp.RelyingPartyError):
        party.validate_id_token(forged, "n-0S6_WzA2Mj")


def test_scopes_limit_the_claims(live: Live) -> None:
    page = live.http.get("/oidc/authorize", params=authorize_params(live, scope="openid name"))
    claims = jose.verify(token(live, code_of(answer(live, challenge=challenge_of(page.text)))).json()["id_token"],
                         live.http.get("/oidc/jwks").json()["keys"])
    assert claims["name"] == "山田 太郎" and "address" not in claims and "birthdate" not in claims


def test_the_portal_logs_a_resident_in_as_a_relying_party(live: Live) -> None:
    started = live.http.get("/portal/login", follow_redirects=True)
    assert started.status_code == 200 and "マイナンバーカードでログイン" in started.text
    challenge = challenge_of(started.text)
    done = live.http.post("/oidc/authorize/answer", follow_redirects=True, data={
        "challenge": challenge, "signature": sign(live.card, challenge),
        "certificate": live.card.auth_cert.public_bytes(serialization.Encoding.PEM).decode()})
    assert done.status_code == 200 and "山田 太郎 さん、ようこそ" in done.text
    assert live.http.post("/portal/logout", follow_redirects=True).text.count("ようこそ") == 0


def test_portal_callback_with_a_foreign_state_is_refused(live: Live) -> None:
    response = live.http.get("/portal/callback", params={"code": "131016.x", "state": "forged"})
    assert response.status_code == 303 and response.headers["location"] == "/portal?failed=state"


def test_revoked_card_is_refused(live: Live) -> None:
    live.pki.revoke(format(live.card.auth_cert.serial_number, "X"))
    assert refused(answer(live)) == "revoked"


def test_card_revoked_by_a_registry_change_is_refused(live: Live) -> None:
    world = live.world
    ids = world.svc.registry.search(world.clerk_a, LG_A, name="ヤマダ")["items"]
    head = next(r for r in ids if r["given_name"] == "太郎")
    world.svc.registry.death(world.clerk_a, LG_A, {"resident_id": head["id"], "occurred_on": "2026-03-31",
                                                   "notified_on": "2026-03-31",
                                                   "remaining_head_id": next(r["id"] for r in ids if r is not head)})
    svc = world.svc
    linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, "test").process_changes(LG_A)
    assert refused(answer(live)) == "revoked"


def test_expired_card_is_refused(live: Live) -> None:
    clock = live.world.svc.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=366 * 6))
    assert refused(answer(live)) == "expired"


def test_wrong_challenge_signature_is_refused(live: Live) -> None:
    assert refused(answer(live, tamper=True)) == "bad_signature"
    other = new_card(live.pki)  # a valid card, but not the key of the certificate presented
    page = live.http.get("/oidc/authorize", params=authorize_params(live))
    challenge = challenge_of(page.text)
    response = live.http.post("/oidc/authorize/answer", data={
        "challenge": challenge, "signature": sign(other, challenge),
        "certificate": live.card.auth_cert.public_bytes(serialization.Encoding.PEM).decode()})
    assert refused(response) == "bad_signature"


def test_unlinked_card_is_refused(live: Live) -> None:
    assert refused(answer(live, new_card(live.pki))) == "not_linked"


def test_signing_certificate_is_not_a_login_certificate(live: Live) -> None:
    page = live.http.get("/oidc/authorize", params=authorize_params(live))
    challenge = challenge_of(page.text)
    signature = base64.b64encode(live.card.signing_key.sign(challenge.encode(), padding.PKCS1v15(),
                                                            hashes.SHA256())).decode()
    response = live.http.post("/oidc/authorize/answer", data={
        "challenge": challenge, "signature": signature,
        "certificate": live.card.signing_cert.public_bytes(serialization.Encoding.PEM).decode()})
    assert refused(response) == "not_linked"  # linked, but as the signing certificate


def test_replayed_or_forged_challenge_is_refused(live: Live) -> None:
    page = live.http.get("/oidc/authorize", params=authorize_params(live))
    challenge = challenge_of(page.text)
    code_of(answer(live, challenge=challenge))
    assert refused(answer(live, challenge=challenge)) == "challenge_used"
    forged = answer(live, challenge=challenge.replace(".", "x.", 1))
    assert forged.status_code == 400 and "data-reason" not in forged.text


def test_replayed_code_is_refused(live_any: Live) -> None:
    code = code_of(answer(live_any))
    assert token(live_any, code).status_code == 200
    again = token(live_any, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_mismatch_is_refused(live: Live) -> None:
    response = token(live, code_of(answer(live)), code_verifier="w" * 50)
    assert response.status_code == 400 and response.json() == {
        "error": "invalid_grant", "error_description": "PKCE verification failed"}


def test_expired_code_is_refused(live: Live) -> None:
    code = code_of(answer(live))
    clock = live.world.svc.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(minutes=2))
    assert token(live, code).json()["error"] == "invalid_grant"


def test_wrong_redirect_uri_is_refused(live: Live) -> None:
    page = live.http.get("/oidc/authorize", params=authorize_params(live, redirect_uri="https://evil.example/cb"))
    assert page.status_code == 400 and "location" not in page.headers
    response = token(live, code_of(answer(live)), redirect_uri=f"{live.url}/elsewhere")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("overrides, error", [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"nonce": ""}, "invalid_request"),
    ({"scope": "name"}, "invalid_scope"),
    ({"scope": "openid sign"}, "invalid_scope"),
    ({"response_type": "token"}, "unsupported_response_type"),
])
def test_bad_authorization_requests_go_back_with_an_error(live: Live, overrides: dict[str, str], error: str) -> None:
    response = live.http.get("/oidc/authorize", params=authorize_params(live, **overrides))
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == [error] and query["state"] == ["st-1"]


def test_unknown_client_is_shown_not_redirected(live: Live) -> None:
    response = live.http.get("/oidc/authorize", params=authorize_params(live, client_id="nobody"))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize("form, status, error", [
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"code": ""}, 400, "invalid_request"),
    ({"client_id": "nobody"}, 401, "invalid_client"),
    ({"code": "131016.not-a-code"}, 400, "invalid_grant"),
    ({"code": "../etc"}, 400, "invalid_grant"),
])
def test_bad_token_requests(live: Live, form: dict[str, str], status: int, error: str) -> None:
    response = token(live, form.pop("code", "131016.unknown"), **form)
    assert response.status_code == status and response.json()["error"] == error


def test_userinfo_needs_a_valid_access_token(live: Live) -> None:
    assert live.http.get("/oidc/userinfo").status_code == 401
    assert live.http.get("/oidc/userinfo", headers={"Authorization": "Bearer abc.def.ghi"}).status_code == 401


def test_configured_client_with_a_secret(live: Live) -> None:
    clients = oidc.configured_clients({"KIBAN_OIDC_CLIENTS": '[{"client_id": "bank", "redirect_uris": '
                                                             '["https://bank.example/cb"], "client_secret": "s3"}]'})
    op = oidc.Provider(live.world.svc.db, live.world.svc.clock, linking.for_platform(
        live.world.svc.db, live.world.svc.clock, live.world.svc.registry, live.world.svc.municipalities, "test"),
        "secret", clients)
    request = op.authorization_request(live.url, {**authorize_params(live), "client_id": "bank",
                                                  "redirect_uri": "https://bank.example/cb"})
    challenge = op.challenge(request)
    location = op.answer(challenge, live.card.auth_cert.public_bytes(serialization.Encoding.PEM),
                         sign(live.card, challenge))
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://bank.example/cb",
            "client_id": "bank", "code_verifier": VERIFIER, "client_secret": "wrong"}
    with pytest.raises(oidc.TokenError) as caught:
        op.token(live.url, form)
    assert caught.value.error == "invalid_client"
    assert "id_token" in op.token(live.url, {**form, "client_secret": "s3"})


def test_login_without_trust_configuration_is_refused_not_failed(live: Live) -> None:
    world = live.world
    svc = world.svc

    def unconfigured() -> service.IdentityService:
        raise service.IdentityError("no trust anchor configured")

    links = linking.CardLinks(svc.db, svc.clock, svc.registry, svc.municipalities, unconfigured)
    op = oidc.Provider(svc.db, svc.clock, links, "secret")
    request = op.authorization_request(live.url, authorize_params(live))
    challenge = op.challenge(request)
    with pytest.raises(oidc.LoginRefused) as caught:
        op.answer(challenge, live.card.auth_cert.public_bytes(serialization.Encoding.PEM), sign(live.card, challenge))
    assert caught.value.reason == "not_configured"
