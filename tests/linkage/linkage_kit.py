"""Helpers of the linkage tests: a hub with two municipalities, outside agencies with their own
keys and certificates from the hub's test CA, a permission table and an enrolled resident."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.identity import testca
from kiban.linkage.model import municipality_member
from kiban.linkage.service import Hub
from kiban_testkit import LG_A, LG_B, World, move_in_data

INSURER = "JP/GOV/kyokai-kenpo/kyufu"  # requester: a health insurer's benefits subsystem
PENSION = "JP/GOV/nenkin/kyufu"  # a second requester, for code separation
JUMIN_A = municipality_member(LG_A)
JUMIN_B = municipality_member(LG_B)
ITEM = "jumin/household-composition"
PROCEDURE = "kenpo-fuyo-nintei"  # 被扶養者の認定
BASIS = "番号法 第19条第8号, 主務省令 第2条 表 第1項"


@dataclass
class Agency:
    id: str
    key: ed25519.Ed25519PrivateKey
    certificate: str


def new_agency(hub: Hub, member: str, name: str, ca: testca.TestCA | None = None) -> Agency:
    key = ed25519.Ed25519PrivateKey.generate()
    ca = ca or testca.TestCA(hub.config.ca_dir)  # type: ignore[arg-type]
    cert = ca.issue_agency_certificate(member, name, key.public_key(), hub.clock.now())
    return Agency(member, key, cert.public_bytes(serialization.Encoding.PEM).decode())


@dataclass
class Setup:
    hub: Hub
    insurer: Agency
    pension: Agency
    resident_id: str
    spouse_id: str
    insurer_code: str
    pension_code: str
    calls: list[tuple[str, str | None, str]]


def build(world: World, rules: list[dict[str, Any]] | None = None) -> Setup:
    hub = world.svc.linkage
    hub.register_municipality(LG_A, "千代田区")
    hub.register_municipality(LG_B, "横浜市")
    insurer = new_agency(hub, INSURER, "全国健康保険協会")
    pension = new_agency(hub, PENSION, "日本年金機構")
    hub.register_member(INSURER, "agency", insurer_name(), certificate=insurer.certificate)
    hub.register_member(PENSION, "agency", "日本年金機構", certificate=pension.certificate)
    hub.publish_permissions(world.platform, rules if rules is not None else [
        {"requester": INSURER, "provider": "JP/LG/*/jumin", "item": ITEM, "procedure": PROCEDURE,
         "legal_basis": BASIS},
        {"requester": PENSION, "provider": JUMIN_A, "item": "jumin/residence", "procedure": "nenkin-jukyu",
         "legal_basis": "番号法 第19条第8号"}], note="first table")
    moved = world.svc.registry.move_in(world.clerk_a, LG_A, move_in_data())
    resident_id, spouse_id = moved["resident_ids"]
    calls: list[tuple[str, str | None, str]] = []
    for item, provider in list(hub.local_providers.items()):
        def spy(lgcode: str, rid: str | None, it: str, params: dict[str, Any], _p: Any = provider) -> Any:
            calls.append((lgcode, rid, it))
            return _p(lgcode, rid, it, params)
        hub.local_providers[item] = spy
    return Setup(hub, insurer, pension, resident_id, spouse_id, hub.enrol(INSURER, LG_A, resident_id),
                 hub.enrol(PENSION, LG_A, resident_id), calls)


def insurer_name() -> str:
    return "全国健康保険協会"
