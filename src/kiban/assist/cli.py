"""`kiban assist ...`: ask the shared assistant, evaluate its retrieval, import FAQs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from kiban.clikit import acting, fail, out, services
from kiban.core.errors import KibanError

app = typer.Typer(help="AIお問い合わせ: the shared multilingual assistant.", no_args_is_help=True)
EVALUATION_SET = Path(__file__).parent / "evaluation.json"


@app.command("ask")
def ask(lgcode: str, question: str,
        lang: Annotated[str | None, typer.Option(help="ja, en, zh, ko or vi")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="the API's JSON")] = False) -> None:
    """Ask a municipality's assistant; prints the approved answer and its source, or the
    hand-off."""
    svc = services()
    try:
        result = svc.assist.ask(lgcode, question, lang)
    except KibanError as exc:
        fail(exc)
    finally:
        svc.db.dispose()
    if as_json:
        out(result)
        return
    if result["status"] == "answered":
        a = result["answer"]
        typer.echo(a["text"])
        typer.echo(f"-- {a['municipality']} {a['ref']} {a['department']} "
                   f"(last reviewed {a['last_reviewed']}, confidence {a['confidence']})")
    else:
        typer.echo(result["handoff"]["message"])
        typer.echo(f"-> {result['handoff']['url']}")


def load_cases(path: Path) -> list[dict[str, Any]]:
    """A JSON list, or JSON Lines, of {"lgcode", "question", "expected"}."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(data, list) or not all(
            isinstance(c, dict) and {"lgcode", "question", "expected"} <= set(c) for c in data):
        raise typer.BadParameter("each case needs lgcode, question and expected")
    return data


@app.command("eval")
def evaluate(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                  help="cases: JSON list or JSON Lines")],
             mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense")] = "hybrid",
             misses: Annotated[bool, typer.Option(help="list the questions missed")] = False
             ) -> None:
    """recall@1, recall@5 and MRR of the retrieval on (question, expected answer id) cases."""
    if mode not in ("hybrid", "bm25", "dense"):
        raise typer.BadParameter("mode is hybrid, bm25 or dense")
    cases = load_cases(file)
    svc = services()
    try:
        result = svc.assist.evaluate(cases, mode)
    except KibanError as exc:
        fail(exc)
    finally:
        svc.db.dispose()
    typer.echo(f"questions\t{result.questions}")
    typer.echo(f"recall@1\t{result.recall_at_1:.3f}")
    typer.echo(f"recall@5\t{result.recall_at_5:.3f}")
    typer.echo(f"MRR\t{result.mrr:.3f}")
    if misses:
        for question, expected, found in result.misses:
            typer.echo(f"miss\t{expected}\t{question}\t{' '.join(found)}")


@app.command("import")
def import_csv(lgcode: str, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
               username: Annotated[str, typer.Option("--as", help="acting staff member")]) -> None:
    """Import FAQs from CSV (all rows or none; problems by row and field)."""
    svc, member = acting(username)
    try:
        done = svc.assist.import_csv(member, lgcode, file.read_bytes())
    except KibanError as exc:
        fail(exc)
    finally:
        svc.db.dispose()
    typer.echo(f"created {done['created']}, updated {done['updated']}")


@app.command("seed-demo")
def seed_demo() -> None:
    """Write the demo FAQ content for the demo municipalities that exist."""
    svc = services()
    try:
        typer.echo(f"assist: {svc.assist.seed_demo()} FAQs")
    finally:
        svc.db.dispose()


@app.command("pack-vectors")
def pack_vectors() -> None:
    """Rebuild the packaged vector cache (vectors.npz) of the demo content and the evaluation
    questions, so tests and fresh demos need not run the model over them (developers)."""
    from kiban.assist.index import PACKAGED_VECTORS, embedder, passage_text, sha

    svc = services()
    try:
        index = svc.assist.index()
        keys = [sha("passage", passage_text(e)) for e in index.entries if e.source != "opendata"]
        for case in load_cases(EVALUATION_SET):
            embedder().query(case["question"])
            keys.append(sha("query", case["question"]))
        typer.echo(f"packed {embedder().save(PACKAGED_VECTORS, keys)} vectors")
    finally:
        svc.db.dispose()
