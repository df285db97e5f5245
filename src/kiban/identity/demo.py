"""Demo: a virtual My Number card for one fictional resident of a demo municipality, linked to
their record, written as `var/demo-card.p12` (PIN KIBANTEST1) and `var/demo-card.json` (the
file the login page at /portal takes). The test CA lives in var/test-ca and points its
certificates at the demo server's CRL and OCSP (127.0.0.1:8000). Everything here is fiction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from kiban.core.clock import Clock
from kiban.identity import linking, service, testca
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.registry.reports import Reports
from kiban.registry.service import Registry

DEMO_OCSP_URL = "http://127.0.0.1:8000/pki/ocsp"
PIN = "KIBANTEST1"


def seed(db: Database, clock: Clock, registry: Registry, municipalities: Municipalities, lgcode: str,
         mode: str, out_dir: Path, echo: Callable[[str], None]) -> None:
    card_json = out_dir / "demo-card.json"
    if card_json.exists():
        echo(f"identity: virtual card {card_json} exists")
        return
    pki = service.TestPki(service.test_ca_dir(mode), mode, clock)
    if not pki.ca.exists():
        pki.init(ocsp_url=DEMO_OCSP_URL)
    actor = linking.system_actor(lgcode)
    # The first resident the registry's feed names (any active one would do).
    page = Reports(db, clock).juki_net_notifications(actor, lgcode, "1970-01-01", 0, 50)
    codes = [item["juminhyo_code"] for item in page["items"] if item.get("status") == "active"]
    if not codes:
        echo("identity: no resident for a virtual card")
        return
    links = linking.for_platform(db, clock, registry, municipalities, mode)
    record = links.resident_record(lgcode, codes[0])
    facts = links.record_facts(lgcode, record)
    card = pki.issue_card(lgcode, record["id"], facts.name, facts.address, facts.birth_date, facts.sex, PIN)
    auth = card.auth_cert.public_bytes(Encoding.DER)
    result = links.link_card(lgcode, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key))
    if not result.linked:
        echo(f"identity: the virtual card was not linked ({result.reason})")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "demo-card.p12").write_bytes(testca.write_card(card, PIN))
    card_json.write_bytes(testca.login_key_json(card))
    card_json.chmod(0o600)
    echo(f"identity: virtual card for a resident of {lgcode} in {card_json} (log in at /portal)")
