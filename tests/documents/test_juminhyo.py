"""住民票の写し / 除票の写し PDF renderer: what a reader of the PDF actually sees."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, StreamObject

from kiban.documents import juminhyo
from kiban.documents.juminhyo import font_path, render

STATEMENT = "この写しは、住民票の原本と相違ないことを証明する。"
JOSHU_STATEMENT = "この写しは、除票の原本と相違ないことを証明する。"


def resident(i: int = 0, **changes: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "full_name": f"山田 花子{i}",
        "full_kana": f"ヤマダ ハナコ{i}",
        "birth_date": date(1985, 3, 10 + i),
        "sex": "2",
        "relationship": "世帯主" if i == 0 else "子",
        "resident_since": date(2010, 4, 1),
        "address_since": date(2019, 5, 1),
        "notified_on": date(2019, 5, 7),
        "previous_address": "東京都港区芝公園四丁目2番8号",
        "honseki": "京都府京都市上京区今出川通1番",
        "hittosha": "山田 一郎",
        "juminhyo_code": f"9876543210{i}",
        "my_number": f"12345678901{i}",
        "former_surname": "",
        "removed_on": None,
        "removal_reason": "",
        "foreign": None,
    }
    r.update(changes)
    return r


def certificate(n: int = 1, **changes: Any) -> dict[str, Any]:
    cert: dict[str, Any] = {
        "kind": "juminhyo",
        "form": "household",
        "serial": "R8-000123",
        "issued_on": date(2026, 4, 1),
        "municipality": {
            "name": "千代田区", "prefecture": "東京都", "lgcode": "131016",
            "issuer_title": "区長", "issuer_name": "千代田 太郎",
        },
        "address": "本町一丁目1番地2 メゾン101",
        "head_name": "山田 花子0",
        "options": {
            "head_and_relationship": True, "honseki": True,
            "juminhyo_code": True, "my_number": True,
        },
        "residents": [resident(i) for i in range(n)],
    }
    cert.update(changes)
    return cert


def pages(pdf: bytes) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def text(pdf: bytes) -> str:
    return "\n".join(pages(pdf))


def test_font_is_the_packaged_ipaex_gothic() -> None:
    path = font_path()
    assert path.name == "ipaexg.ttf"
    assert path.read_bytes()[:4] in (b"\x00\x01\x00\x00", b"true")  # a TrueType file


def test_household_shows_title_people_and_wareki_dates() -> None:
    cert = certificate(2)
    cert["residents"][1].update(sex="1", former_surname="佐藤")
    out = text(render(cert))
    assert "住民票の写し" in out
    for name in ("山田 花子0", "山田 花子1", "ヤマダ ハナコ0", "ヤマダ ハナコ1"):
        assert name in out
    assert "昭和60年3月10日" in out  # birth date of resident 0
    assert "昭和60年3月11日" in out
    assert "平成22年4月1日" in out  # 住民となった年月日
    assert "令和元年5月1日" in out  # 住所を定めた年月日: the first day of 令和
    assert "令和元年5月7日" in out  # 届出日
    assert "男" in out and "女" in out
    assert "旧氏" in out and "佐藤" in out
    assert "東京都港区芝公園四丁目2番8号" in out
    assert "本町一丁目1番地2 メゾン101" in out
    assert "京都府京都市上京区今出川通1番" in out and "山田 一郎" in out
    assert "98765432100" in out and "123456789010" in out
    assert "省略" not in out  # every option was requested
    assert "令和8年4月1日" in out
    assert STATEMENT in out
    assert "東京都千代田区" in out and "区長 千代田 太郎" in out


def test_former_surname_label_only_when_there_is_one() -> None:
    assert "旧氏" not in text(render(certificate(1)))


def test_options_off_print_omitted_and_never_the_value() -> None:
    cert = certificate(1, options={
        "head_and_relationship": False, "honseki": False,
        "juminhyo_code": False, "my_number": False,
    })
    out = text(render(cert))
    for label in ("世帯主", "続柄", "本籍", "筆頭者", "住民票コード", "個人番号"):
        assert label in out
    assert out.count("省略") == 6
    assert "123456789010" not in out  # 個人番号
    assert "98765432100" not in out  # 住民票コード
    assert "京都府京都市上京区今出川通1番" not in out
    assert "山田 一郎" not in out  # 筆頭者
    assert "子" not in out.replace("花子", "")  # no 続柄 value either
    assert "山田 花子0" in out  # the person is still named


def test_only_my_number_hidden() -> None:
    options = {"head_and_relationship": True, "honseki": True,
               "juminhyo_code": True, "my_number": False}
    out = text(render(certificate(3, options=options)))
    assert out.count("省略") == 3  # one 個人番号 per person
    for i in range(3):
        assert f"12345678901{i}" not in out
        assert f"9876543210{i}" in out


def test_multipage_household_certifies_on_the_last_page_only() -> None:
    cert = certificate(11)
    texts = pages(render(cert))
    n = len(texts)
    assert n >= 3
    for i, page in enumerate(texts, start=1):
        assert "R8-000123" in page
        assert f"{i} / {n}" in page
        assert "住民票の写し" in page
        assert "本町一丁目1番地2 メゾン101" in page
        assert (STATEMENT in page) == (i == n)
        assert ("令和8年4月1日" in page) == (i == n)
        assert ("区長 千代田 太郎" in page) == (i == n)
    everyone = "\n".join(texts)
    for i in range(11):
        assert everyone.count(f"ヤマダ ハナコ{i}\n") == 1  # each person once, none lost
    # 世帯連記式: several people share a page.
    assert sum("ヤマダ ハナコ" in page for page in texts) < 11
    assert texts[0].count("ヤマダ ハナコ") >= 4


def test_font_is_embedded() -> None:
    pdf = render(certificate(2))
    embedded = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        fonts = cast(DictionaryObject, resources["/Font"].get_object())
        assert fonts
        for ref in fonts.values():
            font = cast(DictionaryObject, ref.get_object())
            descendants = [cast(DictionaryObject, d.get_object())
                           for d in font.get("/DescendantFonts", [])] or [font]
            for f in descendants:
                descriptor = cast(DictionaryObject, f["/FontDescriptor"].get_object())
                assert "/FontFile2" in descriptor, f"{f['/BaseFont']} is not embedded"
                stream = cast(StreamObject, descriptor["/FontFile2"].get_object())
                assert len(stream.get_data()) > 1000
                embedded.append(str(f["/BaseFont"]))
    assert embedded
    assert all("IPAexGothic" in name for name in embedded)
    # Subset: a few kilobytes of glyphs, not the whole 4 MB font.
    assert len(pdf) < font_path().stat().st_size / 10


def test_individual_form_is_one_page_per_person() -> None:
    texts = pages(render(certificate(3, form="individual")))
    assert len(texts) == 3
    for i, page in enumerate(texts):
        assert f"ヤマダ ハナコ{i}" in page
        assert all(f"ヤマダ ハナコ{j}" not in page for j in range(3) if j != i)
        assert "以下余白" in page
        assert f"{i + 1} / 3" in page
    assert [STATEMENT in page for page in texts] == [False, False, True]


def test_joshu_shows_removal_and_its_own_title_and_statement() -> None:
    cert = certificate(2, kind="joshu")
    for r in cert["residents"]:
        r.update(removed_on=date(2026, 3, 31), removal_reason="転出")
    out = text(render(cert))
    assert "除票の写し" in out and "住民票の写し" not in out
    assert out.count("消除日") == 2 and out.count("事由") == 2
    assert "令和8年3月31日" in out and "転出" in out
    assert JOSHU_STATEMENT in out and STATEMENT not in out


def test_juminhyo_has_no_removal_items() -> None:
    assert "消除日" not in text(render(certificate(1)))


def test_foreign_resident_shows_residence_items_instead_of_honseki() -> None:
    foreign = {
        "nationality": "ベトナム", "residence_status": "技術・人文知識・国際業務",
        "period": "3年", "expiry": date(2028, 3, 31), "card_number": "AB12345678CD",
        "alias": "山本 ミン", "category": "中長期在留者",
    }
    cert = certificate(1)
    cert["residents"][0].update(full_name="NGUYEN VAN MINH", full_kana="グエン ヴァン ミン",
                                foreign=foreign)
    out = text(render(cert))
    for label in ("国籍・地域", "在留資格", "在留期間", "在留期間の満了の日",
                  "在留カード等の番号", "通称", "30条の45区分"):
        assert label in out
    for value in ("ベトナム", "技術・人文知識・国際業務", "3年", "令和10年3月31日",
                  "AB12345678CD", "山本 ミン", "中長期在留者", "NGUYEN VAN MINH"):
        assert value in out
    assert "本籍" not in out and "筆頭者" not in out
    assert "京都府京都市上京区今出川通1番" not in out


def test_long_name_and_address_are_kept_whole() -> None:
    name = "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処" * 2
    address = "千代田区本町一丁目1番地2 グランドパレスロワイヤル本町タワー 三二〇一号室" * 2
    cert = certificate(1, address=address)
    cert["residents"][0]["full_name"] = name
    out = "".join(text(render(cert)).split())  # wrapped lines joined back
    assert "".join(name.split()) in out
    assert "".join(address.split()) in out


def test_text_too_long_to_print_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match="address"):
        render(certificate(1, address="本町一丁目" * 400))


def test_character_missing_from_the_font_is_refused() -> None:
    cert = certificate(1)
    cert["residents"][0]["full_name"] = "\U00020bb7野 花子"  # 𠮷 (つちよし), not in IPAex
    with pytest.raises(ValueError, match=r"residents\[0\]\.full_name.*U\+20BB7"):
        render(cert)


def test_variation_selector_prints_the_base_character() -> None:
    cert = certificate(1)
    cert["residents"][0]["full_name"] = "葛\U000e0100飾 花子"
    assert "葛飾 花子" in text(render(cert))


@pytest.mark.parametrize(
    ("change", "field"),
    [({"kind": "koseki"}, "kind"), ({"form": "list"}, "form"), ({"residents": []}, "residents")],
)
def test_bad_certificate_is_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        render(certificate(1, **change))


def test_bad_sex_code_is_refused() -> None:
    cert = certificate(1)
    cert["residents"][0]["sex"] = "9"
    with pytest.raises(ValueError, match=r"residents\[0\]\.sex"):
        render(cert)


def test_module_is_pure() -> None:
    code = (
        "import sys, kiban.documents.juminhyo as j; j.render; j.font_path();"
        "bad = [m for m in sys.modules if m.startswith(('kiban.registry', 'kiban.platform',"
        " 'matplotlib', 'japanize_matplotlib'))]; print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


_PRINTABLE = st.text(
    alphabet=st.sampled_from("あいうアイウ山田花子髙橋丁目番地号ABCxyz0123456789 ・ー-"),
    min_size=1, max_size=400,
)


@settings(max_examples=60, deadline=None)
# Found by Hypothesis: the word carried over from a break at a space overflowed the line.
@example(value="0 CCyああああ", width=40.0, height=15.590551181102363, size=8.5)
@given(
    value=_PRINTABLE,
    width=st.floats(min_value=40, max_value=500),
    height=st.sampled_from([juminhyo.ROW_H, juminhyo.HEAD_ROW_H, juminhyo.NAME_ROW_H]),
    size=st.sampled_from([juminhyo.VALUE_SIZE, juminhyo.NAME_SIZE]),
)
def test_fitted_text_stays_inside_its_box(value: str, width: float, height: float,
                                          size: float) -> None:
    juminhyo._font()
    try:
        fitted, lines = juminhyo._fit(value, width, height, size, "x")
    except ValueError:
        # Refused only when even the smallest legible size cannot hold it.
        area = juminhyo._width(value, juminhyo.MIN_SIZE) * juminhyo.MIN_SIZE * juminhyo.LEADING
        assert area > width * height * 0.5
        return
    assert juminhyo.MIN_SIZE <= fitted <= size
    assert len(lines) * fitted * juminhyo.LEADING <= height + 1e-6
    for line in lines:
        assert juminhyo._width(line, fitted) <= width + 1e-6
    assert "".join(lines).replace(" ", "") == value.replace(" ", "")  # nothing lost
