"""Benchmark of the shared assistant (issue 10): questions answered per second and p95 latency
over a knowledge base of 100,000 entries (target: p95 at most 100 ms), and recall@1/@5 and MRR
of hybrid retrieval on the evaluation set beside BM25 alone and dense alone, in the same run.

The knowledge base: the demo content (the 60-entry shared bank and the three demo
municipalities' own FAQs, with their real vectors) plus 99,910 synthetic entries of 1,000
synthetic municipalities. Synthetic texts are the demo questions and answers with a town name
and a number mixed in (so BM25 postings have realistic lengths and frequencies); their vectors
are the real vectors of the entry they copy plus Gaussian noise, renormalised (embedding
100,000 passages with the model would take hours on two cores; scoring costs the same for any
vectors). Every question is scored against all 100,000 entries (BM25 over the inverted index,
one matrix-vector product for the dense scores), then restricted to the asker's view.

Latency is measured twice: retrieval alone (the question's vector given: tokenising, BM25,
dense scores, fusion, ranking) and end to end (plus embedding the question with the bundled
model, uncached), for each question of the evaluation set, in several runs; medians of the
runs are printed. Two more rows: the service's `ask` on the demo knowledge base (what a
request runs: the municipality, its settings, the index's freshness, embedding uncached,
retrieval; not counted), and end to end with two askers at once (two threads, as two requests
in the server's pool).

    .venv/bin/python benchmarks/assist.py [--runs 3] [--questions 100] [--entries 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from kiban.assist.cli import EVALUATION_SET
from kiban.assist.index import HybridIndex, embedder, tokenizer
from kiban.assist.model import Entry, evaluate
from kiban.core.clock import SystemClock
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.web.context import Services

DEMO = (("131016", "千代田区", "東京都"), ("141003", "横浜市", "神奈川県"), ("011002", "札幌市", "北海道"))
WHOLE = "whole"
TOWNS = ("本町", "栄町", "旭町", "緑町", "若葉台", "中央", "東町", "西町", "南町", "北町")


def demo_index(tmp: Path) -> tuple[HybridIndex, Services]:
    settings = settings_module.load({"KIBAN_DATABASE_URL": f"sqlite:///{tmp / 'kiban.db'}",
                                     "KIBAN_MODE": "test"})
    upgrade(settings)
    svc = Services.build(settings, SystemClock(), Database(settings))
    for code, name, pref in DEMO:
        svc.municipalities.create(code, name, pref, svc.clock.now())
    svc.assist.seed_demo()
    return svc.assist.index(), svc


def big_index(small: HybridIndex, total: int, seed: int = 7) -> HybridIndex:
    rng = np.random.default_rng(seed)
    real = [i for i, e in enumerate(small.entries) if e.source != "opendata"]
    entries = list(small.entries)
    vectors = [small.vectors]
    tokens = [tokenizer().tokens(e.text) for e in small.entries]
    views: dict[str, list[int]] = {k: list(v) for k, v in small.views.items()}
    synthetic = total - len(entries)
    picks = rng.choice(real, size=synthetic)
    token_cache: dict[int, list[str]] = {}
    noise = rng.normal(0.0, 0.02, size=(synthetic, small.vectors.shape[1])).astype(np.float32)
    copied = small.vectors[picks] + noise
    copied /= np.linalg.norm(copied, axis=1, keepdims=True)
    vectors.append(copied)
    for n, source in enumerate(picks):
        base = small.entries[int(source)]
        lgcode = f"9{n % 1000:04d}0"
        town = TOWNS[n % len(TOWNS)]
        number = n // 1000
        entries.append(Entry(key=f"faq:{lgcode}:{n}", lgcode=lgcode, source="faq",
                             ref=f"{lgcode}-{n:06d}", title=f"{town}{number}の{base.title}",
                             answer=base.answer, category=base.category))
        if int(source) not in token_cache:
            token_cache[int(source)] = tokens[int(source)]
        tokens.append([town, str(number), *token_cache[int(source)]])
        views.setdefault(lgcode, []).append(len(entries) - 1)
    views[WHOLE] = list(range(len(entries)))  # the worst case: one view of the whole base
    return HybridIndex(entries, np.vstack(vectors), tokens,
                       {k: np.array(v, dtype=np.int64) for k, v in views.items()})


def latencies(index: HybridIndex, cases: list[dict[str, str]], embed: bool,
              mode: str = "hybrid", whole: bool = False) -> list[float]:
    model = embedder()._loaded()
    found = []
    for c in cases:
        started = time.perf_counter()
        vector = (np.asarray(model.query(c["question"]), dtype=np.float32) if embed
                  else embedder().query(c["question"]))
        index.search(WHOLE if whole else c["lgcode"], tokenizer().tokens(c["question"]),
                     vector if mode != "bm25" else None, 5, mode, c.get("lang", "ja"))
        found.append((time.perf_counter() - started) * 1000)
    return found


def asked(svc: Services, cases: list[dict[str, str]]) -> list[float]:
    """The service's ask(), the question's vector not cached (a fresh text each time)."""
    found = []
    for n, c in enumerate(cases):
        question = f"{c['question']} ({time.time_ns() % 1_000_000 + n})"
        started = time.perf_counter()
        svc.assist.ask(c["lgcode"], question, count=False)
        found.append((time.perf_counter() - started) * 1000)
    return found


def concurrent(index: HybridIndex, cases: list[dict[str, str]], askers: int = 2) -> list[float]:
    found: list[float] = []
    threads = [threading.Thread(target=lambda part: found.extend(latencies(index, part, True)),
                                args=(cases[k::askers],)) for k in range(askers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def embedding(cases: list[dict[str, str]]) -> list[float]:
    model = embedder()._loaded()
    found = []
    for c in cases:
        started = time.perf_counter()
        model.query(c["question"])
        found.append((time.perf_counter() - started) * 1000)
    return found


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    cases = json.loads(EVALUATION_SET.read_text(encoding="utf-8"))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        small, svc = demo_index(Path(tmp))
        print(f"demo knowledge base: {len(small)} entries ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        index = big_index(small, args.entries)
        print(f"knowledge base: {len(index):,} entries, vocabulary {len(index.vocabulary):,} "
              f"terms, built in {time.perf_counter() - started:.1f} s")

        print("\nRecall on the evaluation set "
              f"({len(cases)} questions; the {len(index):,}-entry index)")
        print(f"{'retrieval':<10} {'recall@1':>9} {'recall@5':>9} {'MRR':>7}")
        for mode in ("hybrid", "bm25", "dense"):
            ranked = []
            for c in cases:
                vector = embedder().query(c["question"]) if mode != "bm25" else None
                hits = index.search(c["lgcode"], tokenizer().tokens(c["question"]), vector, 10,
                                    mode, c.get("lang", "ja"))
                ranked.append([h.entry.ref for h in hits])
            r = evaluate([(c["question"], c["expected"]) for c in cases], ranked)
            print(f"{mode:<10} {r.recall_at_1:>9.3f} {r.recall_at_5:>9.3f} {r.mrr:>7.3f}")

        sample = cases[:: max(1, len(cases) // args.questions)][: args.questions]
        print(f"\nLatency per question over {len(index):,} entries ({len(sample)} questions, "
              f"{args.runs} runs; median of the runs' figures)")
        rows = [("retrieval only, hybrid", False, "hybrid", False),
                ("retrieval only, BM25 alone", False, "bm25", False),
                ("retrieval only, dense alone", False, "dense", False),
                ("retrieval only, hybrid, one view of all entries", False, "hybrid", True),
                ("end to end (model embeds the question), hybrid", True, "hybrid", False),
                ("end to end, two askers at once", True, "two", False),
                ("service ask(), demo base, uncached question", True, "service", False),
                ("embedding the question alone (baseline)", True, "none", False)]
        print("(CPU ms/q: this process's CPU time per question, steadier than wall-clock "
              "figures on a shared machine)")
        print(f"{'measure':<50} {'q/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/q':>9}  runs (p95)")
        for label, embed, mode, whole in rows:
            qps, p50s, p95s, cpus = [], [], [], []
            for _ in range(args.runs):
                cpu = time.process_time()
                started = time.perf_counter()
                values = (embedding(sample) if mode == "none"
                          else concurrent(index, sample) if mode == "two"
                          else asked(svc, sample) if mode == "service"
                          else latencies(index, sample, embed, mode, whole))
                qps.append(len(sample) / (time.perf_counter() - started))
                cpus.append((time.process_time() - cpu) * 1000 / len(sample))
                p50s.append(statistics.median(values))
                p95s.append(p95(values))
            print(f"{label:<50} {statistics.median(qps):>8.1f} {statistics.median(p50s):>8.1f} "
                  f"{statistics.median(p95s):>8.1f} {statistics.median(cpus):>9.2f}  "
                  f"{' / '.join(f'{v:.1f}' for v in p95s)}")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        svc.db.dispose()


if __name__ == "__main__":
    main()
