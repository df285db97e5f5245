"""個人住民税の帳票 as PDF: 特別徴収税額決定通知書 (F-TAX-01), 税額決定・納税通知書 (F-TAX-02),
所得・課税証明書 (F-TAX-03), 非課税証明書 (F-TAX-04) and 税額変更(更正)通知書 (F-TAX-05).

A pure renderer like :mod:`kiban.documents.juminhyo` (whose embedded IPAex Gothic it uses): it
takes the standard's form as data — ``{"form", "name", "items": [{"item", "value"}]}``, the
shape the standard tax API answers — and the items' Japanese names, and returns PDF bytes. It
reads no database. Scalar items are printed in the standard's order as a two-column table;
the per-instalment items (period, amount, due date) as one table of 各期 / 各月; the appeal
notice (教示) at the end.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from kiban.core.wareki import to_wareki
from kiban.documents.juminhyo import FONT_NAME, _font

__all__ = ["render"]

LIST_ITEMS = ("tax.instalment_period", "tax.instalment_amount", "tax.due_date")
TEXT_ITEMS = ("tax.appeal_notice",)
CODES = {
    "tax.collection_method": {"special": "特別徴収", "ordinary": "普通徴収",
                              "pension": "公的年金からの特別徴収"},
    "tax.non_taxable": {"all": "非課税(均等割・所得割とも)", "income_levy": "所得割非課税",
                        "none": "課税"},
}
YEN_WORDS = ("revenue", "income", "deduction", "levy", "tax", "credit", "reduction",
             "difference")


def _is_yen(item: str) -> bool:
    return item.startswith("tax.") and any(w in item for w in YEN_WORDS) and \
        item not in ("tax.fiscal_year", "tax.income_year", "tax.taxpayer_number",
                     "tax.non_taxable", "tax.dependant_count", "tax.collection_method")


def _text(item: str, value: Any) -> str:
    if value is None:
        return ""
    if item in CODES:
        return CODES[item].get(str(value), str(value))
    if item in ("tax.fiscal_year", "tax.income_year") and isinstance(value, int):
        era = to_wareki(date(value, 4 if item == "tax.fiscal_year" else 12, 1))
        suffix = "年度" if item == "tax.fiscal_year" else "年分"
        return f"{era.split('年')[0]}{suffix}({value})"
    if isinstance(value, bool):
        return "有" if value else "無"
    if isinstance(value, int):
        if item == "tax.dependant_count":
            return f"{value}人"
        if item == "tax.assessment_version":
            return f"第{value}版"
        if _is_yen(item):
            return f"{value:+,}円" if item == "tax.annual_tax_difference" else f"{value:,}円"
        return str(value)
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return to_wareki(date.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


def render(form: Mapping[str, Any], *, municipality: str,
           labels: Mapping[str, str] | None = None) -> bytes:
    """The form as A4 PDF bytes. `labels` gives each item's Japanese name (the standard's
    items); an item without one is printed under its ID."""
    _font()
    labels = labels or {}
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm,
                            title=str(form.get("name", "")), author=municipality)
    title = ParagraphStyle("title", fontName=FONT_NAME, fontSize=16, leading=22, alignment=1)
    body = ParagraphStyle("body", fontName=FONT_NAME, fontSize=9, leading=13)
    small = ParagraphStyle("small", fontName=FONT_NAME, fontSize=8, leading=11)
    values = {entry["item"]: entry.get("value") for entry in form.get("items", [])}
    story: list[Any] = [Paragraph(str(form.get("name", "")), title),
                        Paragraph(f"{municipality}({form.get('form', '')})", body),
                        Spacer(1, 5 * mm)]
    rows = [[Paragraph(labels.get(entry["item"], entry["item"]), body),
             Paragraph(_text(entry["item"], entry.get("value")), body)]
            for entry in form.get("items", [])
            if entry["item"] not in LIST_ITEMS and entry["item"] not in TEXT_ITEMS]
    table = Table(rows, colWidths=[70 * mm, 100 * mm])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT_NAME),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.94, 0.94, 0.94)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story.append(table)
    periods = values.get("tax.instalment_period") or []
    if periods:
        amounts = values.get("tax.instalment_amount") or []
        dues = values.get("tax.due_date") or [None] * len(periods)
        head = ["期・月", "税額"] + (["納期限"] if any(dues) else [])
        lines = [head]
        for i, period in enumerate(periods):
            line = [str(period), f"{amounts[i]:,}円" if i < len(amounts) else ""]
            if any(dues):
                line.append(_text("tax.due_date", dues[i] if i < len(dues) else None))
            lines.append(line)
        grid = Table(lines, colWidths=[40 * mm, 40 * mm] + ([50 * mm] if any(dues) else []))
        grid.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), FONT_NAME), ("FONTSIZE", (0, 0), (-1, -1), 9),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.94, 0.94, 0.94)),
            ("ALIGN", (1, 1), (1, -1), "RIGHT")]))
        story += [Spacer(1, 5 * mm), grid]
    for item in TEXT_ITEMS:
        if values.get(item):
            story += [Spacer(1, 6 * mm), Paragraph(labels.get(item, "教示"), body),
                      Paragraph(str(values[item]), small)]
    doc.build(story)
    return out.getvalue()
