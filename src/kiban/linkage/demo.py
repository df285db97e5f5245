"""Demo data of the exchange hub (`kiban demo seed`): every municipality's registry as a
member, a health insurer as a requester, a first permission table, and a few exchanges (one
refused) made through the in-process client, so the console and the log have something to show."""

from __future__ import annotations

from collections.abc import Callable

from kiban.linkage.client import InProcessClient
from kiban.linkage.model import municipality_member
from kiban.platform.auth import Role
from kiban.web.context import Services

INSURER = "JP/GOV/kyokai-kenpo/kyufu"
ITEM = "jumin/household-composition"
PROCEDURE = "kenpo-fuyo-nintei"
RULES = [
    {"requester": INSURER, "provider": "JP/LG/*/jumin", "item": ITEM, "procedure": PROCEDURE,
     "legal_basis": "番号法 第19条第8号・主務省令 (健康保険法による被扶養者の認定)"},
    {"requester": INSURER, "provider": "JP/LG/*/jumin", "item": "jumin/residence", "procedure": PROCEDURE,
     "legal_basis": "番号法 第19条第8号・主務省令 (健康保険法による被扶養者の認定)"},
]


def seed(svc: Services, echo: Callable[[str], None]) -> None:
    hub = svc.linkage
    known = {m["id"] for m in hub.members()}
    municipalities = svc.municipalities.list()
    for m in municipalities:
        if municipality_member(m["lgcode"]) not in known:
            hub.register_municipality(m["lgcode"], m["name"])
    if INSURER not in known:
        hub.register_member(INSURER, "agency", "全国健康保険協会 (デモ)")
    admin = next((s for s in svc.accounts.list(None) if Role.PLATFORM_ADMIN in s.roles), None)
    if admin is not None and hub.permissions()["version"] == 0:
        hub.publish_permissions(admin, RULES, "デモ用の連携表")
    if hub.sth()["tree_size"]:
        echo("linkage: members and table exist, exchanges skipped")
        return
    client = InProcessClient(hub, INSURER)
    done = 0
    for m in municipalities:
        supervisor = next((s for s in svc.accounts.list(m["lgcode"]) if Role.REGISTRY_SUPERVISOR in s.roles), None)
        towns = sorted(svc.municipalities.towns(m["lgcode"]))
        if supervisor is None or not towns:
            continue
        found = svc.registry.search(supervisor, m["lgcode"], town_code=towns[0], per_page=3)["items"]
        codes = [hub.enrol(INSURER, m["lgcode"], r["id"]) for r in found]
        for code in codes:
            client.exchange(municipality_member(m["lgcode"]), ITEM, PROCEDURE, code)
            done += 1
        if codes:
            # Not in the table: refused, and logged like the others.
            client.exchange(municipality_member(m["lgcode"]), ITEM, "kenpo-shikaku", codes[0])
            break
    echo(f"linkage: {len(municipalities)} municipalities and 1 insurer are members; {done} exchanges logged")
