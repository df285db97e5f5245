"""Demo open data: each demo municipality publishes fictional standard datasets (public
facilities, AEDs, evacuation sites, childcare facilities, tourism facilities, events) through
the ordinary CSV publishing path, and generates 地域・年齢別人口 from its registry, so the
catalog, map and API have content from the first start. Everything here is fiction."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from kiban.core.clock import Clock, today_jst
from kiban.opendata import model
from kiban.opendata.service import OpenData, dataset_id
from kiban.platform.auth import Accounts, Role
from kiban.platform.db import Database

# Rough centres of the demo municipalities' offices; points are scattered around them.
CENTRES = {"131016": (35.6940, 139.7536), "141003": (35.4437, 139.6380),
           "011002": (43.0621, 141.3544)}
DAYS = "月火水木金"


def _rows(schema: str, lgcode: str, name: str, prefecture: str, towns: Sequence[str],
          rng: random.Random, today_iso: str) -> list[dict[str, object]]:
    lat0, lon0 = CENTRES.get(lgcode, (35.68, 139.76))
    full = f"{prefecture}{name}"

    def place(i: int) -> dict[str, object]:
        town = towns[i % len(towns)]
        return {"住所": f"{full}{town}{rng.randint(1, 5)}-{rng.randint(1, 20)}",
                "緯度": round(lat0 + rng.uniform(-0.02, 0.02), 5),
                "経度": round(lon0 + rng.uniform(-0.025, 0.025), 5), "_town": town}

    common = {"全国地方公共団体コード": lgcode, "地方公共団体名": full}
    out: list[dict[str, object]] = []
    if schema == "public_facilities":
        for i, kind in enumerate(("区民会館", "図書館", "体育館", "出張所", "清掃事務所", "公文書館")):
            p = place(i)
            out.append({**common, **p, "ID": f"PF{i + 1:04d}", "名称": f"{p['_town']}{kind}",
                        "名称_カナ": "デモシセツ", "電話番号": f"03-0000-{1000 + i}",
                        "利用可能曜日": DAYS, "開始時間": "09:00", "終了時間": "17:00",
                        "備考": "デモ用の架空データ"})
    elif schema == "aed_locations":
        for i in range(8):
            p = place(i)
            out.append({**common, **p, "ID": f"AED{i + 1:04d}", "名称": f"{p['_town']}第{i + 1}庁舎",
                        "名称_カナ": "デモチョウシャ", "設置位置": rng.choice(("1階受付", "正面玄関", "2階ロビー")),
                        "利用可能曜日": DAYS, "開始時間": "08:30", "終了時間": "17:15",
                        "小児対応設備の有無": rng.choice(("有", "無")), "備考": "デモ用の架空データ"})
    elif schema == "emergency_evacuation_sites":
        for i in range(5):
            p = place(i)
            kinds = {k: rng.choice(("0", "1")) for k in (
                "災害種別_洪水", "災害種別_高潮", "災害種別_津波", "災害種別_内水氾濫")}
            out.append({**common, **p, "ID": f"EV{i + 1:04d}", "名称": f"{p['_town']}小学校",
                        "名称_カナ": "デモショウガッコウ", "災害種別_地震": "1",
                        "災害種別_大規模な火事": "1", **kinds,
                        "想定収容人数": rng.randint(3, 12) * 100, "備考": "デモ用の架空データ"})
    elif schema == "childcare_facilities":
        for i, kind in enumerate(("保育所", "認定こども園", "保育所", "幼稚園", "児童館")):
            p = place(i)
            out.append({**common, **p, "ID": f"CC{i + 1:04d}", "名称": f"{p['_town']}{kind}",
                        "名称_カナ": "デモホイクショ", "種別": kind, "開始時間": "07:30",
                        "終了時間": "18:30", "定員": rng.randint(4, 15) * 10,
                        "備考": "デモ用の架空データ"})
    elif schema == "tourism_facilities":
        for i, kind in enumerate(("歴史資料館", "庭園", "展望台", "記念公園", "美術館")):
            p = place(i)
            out.append({**common, **p, "ID": f"TF{i + 1:04d}", "名称": f"{p['_town']}{kind}",
                        "名称_カナ": "デモカンコウ", "説明": f"{name}の{kind}(架空)。",
                        "料金(基本)": rng.choice(("無料", "一般300円")), "備考": "デモ用の架空データ"})
    elif schema == "events":
        start = date.fromisoformat(today_iso)
        for i, title in enumerate(("区民まつり", "子ども読書会", "防災訓練", "朝市", "ウォーキング大会")):
            p = place(i)
            begin = start + timedelta(days=7 * i + 3)
            out.append({**common, **p, "ID": f"EV{i + 1:04d}", "イベント名": f"{p['_town']}{title}",
                        "イベント名_カナ": "デモイベント", "開始日": begin.isoformat(),
                        "終了日": (begin + timedelta(days=i % 2)).isoformat(),
                        "開始時間": "10:00", "終了時間": "15:00", "説明": f"{title}(架空)。",
                        "場所名称": f"{p['_town']}広場", "定員": rng.randint(2, 10) * 10,
                        "備考": "デモ用の架空データ"})
    for row in out:
        row.pop("_town", None)
    return out


SCHEMAS = ("public_facilities", "aed_locations", "emergency_evacuation_sites",
           "childcare_facilities", "tourism_facilities", "events")


def seed(db: Database, clock: Clock, accounts: Accounts,
         municipalities: Sequence[tuple[str, str, str, Sequence[str]]],
         echo: Callable[[str], object] = print) -> None:
    """Publishes the demo datasets of each (lgcode, name, prefecture, town names) as its
    DX推進担当, and generates its 地域・年齢別人口; skips a municipality that has them."""
    svc = OpenData(db, clock)
    today = today_jst(clock).isoformat()
    for index, (lgcode, name, prefecture, towns) in enumerate(municipalities):
        if svc.search(names=[dataset_id(lgcode, "aed_locations")])[0]:
            echo(f"{lgcode} open data: already published, skipped")
            continue
        officer = next((m for m in accounts.list(lgcode) if Role.DIGITAL_OFFICER in m.roles),
                       None)
        if officer is None:
            echo(f"{lgcode} open data: no DX推進担当 to publish, skipped")
            continue
        rng = random.Random(2026 + index)  # noqa: S311 - fictional demo data, not secrets
        for schema in SCHEMAS:
            rows = _rows(schema, lgcode, name, prefecture, towns or ["本町"], rng, today)
            columns = svc.schema(schema).field_names
            svc.publish_csv(officer, lgcode, schema,
                            model.to_csv(columns, rows).encode("utf-8"), filename="demo.csv")
        generated = svc.generate_population(lgcode)
        echo(f"{lgcode} open data: {len(SCHEMAS)} datasets and 地域・年齢別人口 "
             f"({generated.rows} rows)")
