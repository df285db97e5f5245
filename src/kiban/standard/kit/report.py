"""The conformance report as a terminal table, JSON, and one standalone HTML page."""

from __future__ import annotations

import html
import json
import unicodedata

from kiban.standard.kit.runner import Report

LABELS = {"pass": "適合", "fail": "不適合", "not_implemented": "未実装", "deviated": "逸脱(公表)",
          "untested": "検査なし"}
KIND_LABELS = {"mandatory": "実装必須", "option": "標準オプション", "not_allowed": "実装不可"}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cut(text: str, width: int) -> str:
    out = ""
    for ch in text:
        if _width(out + ch) > width:
            return out[:-1] + "…" if out else out
        out += ch
    return out + " " * (width - _width(out))


def table(report: Report) -> str:
    lines = [f"Kiban conformance: {report.target} (standard {report.spec_version}, "
             f"{', '.join(report.domains)}; {report.seconds:.1f} s)", ""]
    lines.append(f"{'requirement':<12} {_cut('kind', 14)} {_cut('status', 16)} title")
    for r in report.requirements:
        status = f"{r['status']} {LABELS[r['status']]}"
        lines.append(f"{r['id']:<12} {_cut(KIND_LABELS[r['kind']], 14)} {_cut(status, 16)} "
                     f"{r['title']}")
        if r["status"] == "deviated":
            d = r["deviation"]
            lines.append(f"{'':<12}   deviation: {d['what']} — {d['reason']} "
                         f"(decided by {d['decided_by']} on {d['decided_on']})")
    failures = [o for o in report.outcomes if o.status != "pass"]
    if failures:
        lines += ["", "checks not passing:"]
        lines += [f"  {o.test} {o.status}: {o.title}: {o.detail}" for o in failures]
    counts = report.counts()
    mandatory = report.counts("mandatory")
    lines += ["", "summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
              "mandatory: " + ", ".join(f"{k} {v}" for k, v in sorted(mandatory.items())),
              "result: " + ("CONFORMS (every mandatory requirement passes or is publicly deviated)"
                            if report.mandatory_ok else "DOES NOT CONFORM")]
    return "\n".join(lines)


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=2)


def as_html(report: Report) -> str:
    """A page that stands alone: no script, no outside resource, printable."""
    e = html.escape
    rows = []
    for r in report.requirements:
        note = ""
        if r["status"] == "deviated":
            d = r["deviation"]
            note = (f"<br><small>逸脱: {e(str(d['what']))} — 理由: {e(str(d['reason']))}"
                    f"(決定 {e(str(d['decided_by']))} {e(str(d['decided_on']))}、"
                    f"見直し {e(str(d['review_on']))}; 検査結果 {e(r['checked_status'])})</small>")
        rows.append(f"<tr class='{e(r['status'])}'><th scope='row'>{e(r['id'])}</th>"
                    f"<td>{e(KIND_LABELS[r['kind']])}</td><td>{e(LABELS[r['status']])}</td>"
                    f"<td>{e(r['title'])}{note}</td><td>{e(' '.join(r['tests']))}</td></tr>")
    checks = "".join(
        f"<tr class='{e(o.status)}'><th scope='row'>{e(o.test)}</th><td>{e(LABELS[o.status])}</td>"
        f"<td>{e(o.title)}</td><td>{e(o.detail)}</td><td>{o.ms:.0f}</td></tr>"
        for o in report.outcomes)
    counts = ", ".join(f"{LABELS[k]} {v}" for k, v in sorted(report.counts().items()))
    verdict = "適合(実装必須の要件はすべて適合または公表済みの逸脱)" if report.mandatory_ok \
        else "不適合"
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>適合性検査報告 {e(report.target)}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; color: #1a1a1a; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
tr.fail td:nth-child(3), tr.fail td:nth-child(2) {{ color: #b00020; font-weight: bold; }}
tr.not_implemented td:nth-child(3) {{ color: #8a6d00; }}
tr.deviated td:nth-child(3) {{ color: #0b57a4; }}
</style></head><body>
<h1>適合性検査報告</h1>
<p>対象 {e(report.target)}・標準仕様 {e(report.spec_version)}・分野 {e(', '.join(report.domains))}・
開始 {e(report.started)}・所要 {report.seconds:.1f} 秒</p>
<p id="verdict"><strong>{e(verdict)}</strong>({e(counts)})</p>
<h2>要件ごとの結果</h2>
<table><thead><tr><th scope="col">要件</th><th scope="col">区分</th><th scope="col">結果</th>
<th scope="col">名称</th><th scope="col">検査</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
<h2>検査ごとの結果</h2>
<table><thead><tr><th scope="col">検査</th><th scope="col">結果</th><th scope="col">内容</th>
<th scope="col">詳細</th><th scope="col">ms</th></tr></thead><tbody>{checks}</tbody></table>
</body></html>
"""
