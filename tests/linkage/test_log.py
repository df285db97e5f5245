"""The public log over HTTP in Certificate Transparency's shapes: a signed tree head, inclusion
proofs by leaf hash, consistency between two heads, entries; and tampering detected."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from fastapi.testclient import TestClient
from linkage_kit import INSURER, ITEM, JUMIN_A, PROCEDURE, build
from sqlalchemy import text
from test_merkle import independent_consistency, independent_inclusion

from kiban.core.clock import FixedClock
from kiban.linkage import merkle, protocol
from kiban.linkage.client import HttpClient
from kiban.web.app import create_app
from kiban_testkit import World


def b64(data: str) -> bytes:
    return base64.b64decode(data)


def test_ct_endpoints_prove_inclusion_and_consistency(sqlite_world: World) -> None:
    world = sqlite_world
    setup = build(world)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    app.state.services = world.svc
    client = TestClient(app)
    insurer = HttpClient("http://testserver", INSURER, setup.insurer.key, setup.hub.hub_certificate,
                         clock=world.svc.clock, http=client)
    hub_key = protocol.certificate_key(client.get("/api/v1/linkage/hub").json()["certificate"])
    base = "/api/v1/linkage/ct/v1"

    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).ok
    first = client.get(f"{base}/get-sth").json()
    assert protocol.verify_tree_head(hub_key, first)
    assert first["tree_size"] == 1
    assert isinstance(world.svc.clock, FixedClock)
    for n in range(6):
        world.svc.clock.advance(timedelta(seconds=1))
        insurer.exchange(JUMIN_A, ITEM, PROCEDURE if n % 2 else "kenpo-other", setup.insurer_code)
    second = client.get(f"{base}/get-sth").json()
    assert protocol.verify_tree_head(hub_key, second)
    assert second["tree_size"] == 7 and second["timestamp"] >= first["timestamp"]
    forged = {**second, "tree_size": 8}
    assert not protocol.verify_tree_head(hub_key, forged)

    entries = client.get(f"{base}/get-entries", params={"start": 0, "end": 6}).json()["entries"]
    assert len(entries) == 7
    root = b64(second["sha256_root_hash"])
    for index, e in enumerate(entries):
        leaf = merkle.leaf_hash(b64(e["leaf_input"]))
        proof = client.get(f"{base}/get-proof-by-hash", params={
            "hash": base64.b64encode(leaf).decode(), "tree_size": 7}).json()
        assert proof["leaf_index"] == index
        path = [b64(p) for p in proof["audit_path"]]
        assert independent_inclusion(index, 7, leaf, path, root)
        entry = json.loads(b64(e["leaf_input"]))
        assert entry["client"] == INSURER and "subject" in entry
        assert not {"name", "resident_id", "juminhyo_code", "my_number"} & set(entry)
    consistency = client.get(f"{base}/get-sth-consistency", params={"first": 1, "second": 7}).json()
    path = [b64(p) for p in consistency["consistency"]]
    assert independent_consistency(1, 7, b64(first["sha256_root_hash"]), root, path)
    assert merkle.verify_consistency(1, 7, b64(first["sha256_root_hash"]), root, path)
    # Bad queries are refused with the field named, never a 500.
    assert client.get(f"{base}/get-proof-by-hash", params={"hash": "***", "tree_size": 7}).status_code == 422
    assert client.get(f"{base}/get-proof-by-hash", params={
        "hash": base64.b64encode(b"x" * 32).decode(), "tree_size": 7}).status_code == 404
    assert client.get(f"{base}/get-sth-consistency", params={"first": 3, "second": 99}).json()["field"] == "second"
    assert client.get(f"{base}/get-sth-consistency", params={"first": 5, "second": 2}).status_code == 422
    assert client.get(f"{base}/get-entries", params={"start": 4, "end": 1}).status_code == 422

    # The resident's subject commitments link no two entries.
    subjects = [json.loads(b64(e["leaf_input"]))["subject"] for e in entries]
    assert len(set(subjects)) == len(subjects)

    # Tampering: an altered entry, then a rewritten log, are each detected.
    assert setup.hub.verify_log() == []
    with world.svc.db.engine.begin() as conn:
        stored = conn.execute(text("SELECT entry FROM linkage_log WHERE leaf_index = 3")).scalar_one()
        conn.execute(text("UPDATE linkage_log SET entry = :e WHERE leaf_index = 3"),
                     {"e": stored.replace("refused", "provided")})
    assert "leaf 3: the entry does not match its hash" in setup.hub.verify_log()
    with world.svc.db.engine.begin() as conn:
        forged_entry = stored.replace("refused", "provided")
        conn.execute(text("UPDATE linkage_log SET leaf_hash = :h WHERE leaf_index = 3"),
                     {"h": merkle.leaf_hash(forged_entry.encode()).hex()})
    problems = setup.hub.verify_log()
    assert problems == ["the root of the first 7 leaves differs from the published head"]
    with world.svc.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM linkage_log WHERE leaf_index = 6"))
    assert "the published head covers 7 leaves; 6 are stored" in setup.hub.verify_log()
