"""The moving journey across two deployments: two Kiban processes, each with its own database.
Deployment X (this test process, with its exchange hub) holds the departure municipality;
deployment Y (`kiban serve` in a second process) the destination, registered at X's hub as a
member served over HTTP. The 転出証明書情報 travels X's hub → Y's endpoint, signed both ways;
the resident books at Y with the reference Y gave; Y's clerk completes the 特例転入 from it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.core.clock import FixedClock, today_jst
from kiban.identity import testca
from kiban.linkage import protocol
from kiban.linkage.model import municipality_member
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.procedures.life_events import ITEM, ITEM_DESCRIPTION, permission_rules
from kiban.web.context import Services
from kiban_testkit import LG_A, LG_B, PASSWORD, TOWNS, move_in_data

from .procedures_kit import reuse_keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def kiban_process(env: dict[str, str], port: int) -> Iterator[str]:
    kiban = str(Path(sys.executable).parent / "kiban")
    process = subprocess.Popen([kiban, "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"kiban serve exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kiban serve did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def settings_for(path: Path) -> settings_module.Settings:
    path.mkdir(parents=True, exist_ok=True)
    return settings_module.load({"KIBAN_DATABASE_URL": f"sqlite:///{path / 'kiban.db'}", "KIBAN_MODE": "test"})


def test_moving_across_two_deployments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reuse_keys(monkeypatch)
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca-x"))
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now)
    today = today_jst(clock)

    # Deployment Y: its own database with the destination municipality and its clerk.
    y_settings = settings_for(tmp_path / "y")
    upgrade(y_settings)
    y = Services.build(y_settings, clock, Database(y_settings))
    y.municipalities.create(LG_B, "横浜市", "神奈川県", now)
    y.municipalities.set_towns(LG_B, TOWNS, now, "test")
    y.accounts.create("clerk-b", PASSWORD, "窓口 次郎", ["counter_clerk"], LG_B, now)
    y.db.dispose()

    # Deployment X: the departure municipality, a household, and the hub.
    x_settings = settings_for(tmp_path / "x")
    upgrade(x_settings)
    x = Services.build(x_settings, clock, Database(x_settings))
    x.municipalities.create(LG_A, "千代田区", "東京都", now)
    x.municipalities.set_towns(LG_A, TOWNS, now, "test")
    clerk_a = x.accounts.create("clerk-a", PASSWORD, "窓口 一郎", ["counter_clerk"], LG_A, now)
    platform = x.accounts.create("platform", PASSWORD, "基盤 管理", ["platform_admin"], None, now)
    moved_in = (today - timedelta(days=20)).isoformat()
    taro, hanako = x.registry.move_in(clerk_a, LG_A, move_in_data(occurred_on=moved_in, notified_on=moved_in))[
        "resident_ids"]
    hub = x.linkage
    hub.register_municipality(LG_A, "千代田区")

    # Y's registry member: its own key, certified by the CA X's hub trusts; registered at X's
    # hub with Y's endpoint. Y pins X's hub certificate.
    port = free_port()
    key = ed25519.Ed25519PrivateKey.generate()
    cert = testca.TestCA(hub.config.ca_dir).issue_agency_certificate(
        municipality_member(LG_B), "横浜市 住民記録", key.public_key(), now)
    hub.register_member(municipality_member(LG_B), "municipality", "横浜市 住民記録",
                        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
                        endpoint=f"http://127.0.0.1:{port}/api/v1/life-events/exchange",
                        items={ITEM: ITEM_DESCRIPTION})
    hub.publish_permissions(platform, permission_rules(LG_A, LG_B), note="moves to Y")
    (tmp_path / "peer.key.pem").write_bytes(protocol.key_pem(key))
    (tmp_path / "hub.crt.pem").write_text(hub.hub_certificate)
    child_env = {**os.environ, "KIBAN_MODE": "test", "KIBAN_DATABASE_URL": y_settings.database_url,
                 "KIBAN_TEST_CA_DIR": str(tmp_path / "ca-y"),
                 "KIBAN_LIFE_EVENTS_PEER_KEY": str(tmp_path / "peer.key.pem"),
                 "KIBAN_LIFE_EVENTS_HUB_CERTIFICATE": str(tmp_path / "hub.crt.pem")}

    with kiban_process(child_env, port) as y_url:
        # The online 転出届, approved at X (the procedures service's call).
        planned = (today + timedelta(days=3)).isoformat()
        move = x.life_events.move_out_approved(clerk_a, LG_A, {
            "id": "app-1", "procedure_id": "tenshutsu", "resident_id": taro, "submitted_at": now.isoformat(),
            "form": {"move_date": planned, "new_lgcode": LG_B, "new_address": "横浜市中区本町一丁目5番地",
                     "members": "全員"}})
        assert move["status"] == "sent", move
        assert move["reference"]
        assert x.registry.get(clerk_a, LG_A, taro)["status"] == "removed"
        logged = [e for e in hub.exchanges_of_resident(LG_A, hanako)["exchanges"] if e["item"] == ITEM]
        assert logged and logged[0]["provider"] == municipality_member(LG_B) and logged[0]["verified"]

        with httpx.Client(base_url=y_url, timeout=30) as http:
            token = http.post("/api/v1/tokens", json={"username": "clerk-b", "password": PASSWORD}).json()["token"]
            staff = {"Authorization": f"Bearer {token}"}
            base = f"/api/v1/municipalities/{LG_B}/life-events"
            [arrival] = http.get(f"{base}/arrivals", headers=staff).json()["items"]
            assert arrival["move_id"] == move["move_id"] and arrival["from_lgcode"] == LG_A
            assert {p["name"] for p in arrival["people"]} == {"山田 太郎", "山田 花子"}

            # A forged forward (not signed by the pinned hub) is refused and stores nothing.
            forged = http.post("/api/v1/life-events/exchange", content=b'{"protocol":"kiban-linkage/1"}',
                               headers={"X-Kiban-Client": protocol.HUB_MEMBER, "X-Kiban-Signature": "AAAA"})
            assert forged.status_code == 403

            # The resident books with the reference Y gave (shown to them by X) and a birth date.
            slot = http.post(f"{base}/slots", headers=staff, json={"slots": [
                {"starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "capacity": 1}]})
            assert slot.status_code == 201, slot.text
            slot_id = slot.json()["items"][0]["id"]
            wrong = http.post("/api/v1/life-events/bookings", json={
                "lgcode": LG_B, "reference": move["reference"], "birth_date": "1999-01-01", "slot_id": slot_id})
            assert wrong.status_code == 404
            booked = http.post("/api/v1/life-events/bookings", json={
                "lgcode": LG_B, "reference": move["reference"], "birth_date": "1980-05-05", "slot_id": slot_id})
            assert booked.status_code == 201, booked.text
            twice = http.post("/api/v1/life-events/bookings", json={
                "lgcode": LG_B, "reference": move["reference"], "birth_date": "1980-05-05", "slot_id": slot_id})
            assert twice.status_code == 409

            # The counter at Y: 特例転入 from the data received, only the address entered.
            done = http.post(f"{base}/arrivals/{move['move_id']}/special-move-in", headers=staff, json={
                "occurred_on": today.isoformat(), "address": {"town_code": "0001002", "banchi": "3番地"}})
            assert done.status_code == 201, done.text
            result = done.json()
            record = http.get(f"/api/v1/municipalities/{LG_B}/residents/{result['resident_ids'][0]}",
                              headers=staff).json()
            assert record["juminhyo_code"] == x.registry.get(clerk_a, LG_A, taro)["juminhyo_code"]
            checklist = http.get(f"{base}/households/{result['household_id']}/checklist", headers=staff).json()
            assert sorted(i["procedure_id"] for i in checklist["items"]) == [
                "jido-teate", "kokuho-enrolment", "school-transfer"]
            assert {i["state"] for i in checklist["items"]} == {"todo"}
            again = http.post(f"{base}/arrivals/{move['move_id']}/special-move-in", headers=staff, json={
                "occurred_on": today.isoformat(), "address": {"town_code": "0001002", "banchi": "3番地"}})
            assert again.status_code == 409
    x.db.dispose()
