"""k-anonymity and l-diversity by full-domain generalisation, vectorised with NumPy, and the
re-identification risk of the result.

Each quasi-identifier has a generalisation hierarchy: level 0 is the value itself (after
unusual values are top- and bottom-coded), higher levels merge values (5-year, 10-year...
age bands; a 町字 code cut to its 大字 prefix; finally "*"). Values are coded once as small
integers; a level is a lookup table from those codes to the level's groups, so generalising
a million records is one gather per quasi-identifier, and the equivalence classes are one
`np.unique` over a mixed-radix key.

The search visits the lattice of generalisation levels in order of generalisation loss and
keeps the node of least total loss (generalisation plus suppression) whose records in
too-small (or not diverse enough) classes fit the suppression limit; it stops as soon as no
node left can beat it. Records still at risk are suppressed (規則第62条第4号・第5号: 特異な記述の削除, 適切な措置).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.int64]
BINCOUNT_LIMIT = 1 << 24  # key spaces counted with np.bincount (16M int64 counters at most)


@dataclass
class Hierarchy:
    """One quasi-identifier: base codes per record and, per level, a lookup from base code to
    group, the groups' labels and the number of base values each group covers."""
    name: str
    base: Codes
    luts: list[Codes]
    labels: list[list[str]]
    leaves: list[Codes]
    coded: dict[str, int] = field(default_factory=dict)  # how many values were top/bottom-coded

    @property
    def height(self) -> int:
        return len(self.luts) - 1

    def loss_at(self, level: int, weights: npt.NDArray[np.float64]) -> float:
        """Loss Metric (Iyengar 2002) of this attribute at `level`, weighted by how many
        records hold each base value: (values in the group - 1) / (values in domain - 1)."""
        domain = len(self.luts[0])
        if domain <= 1:
            return 0.0
        per_base = (self.leaves[level][self.luts[level]] - 1) / (domain - 1)
        return float(np.dot(per_base, weights))


def _hierarchy_from_groups(name: str, base: Codes, groupings: list[Codes],
                           labels: list[list[str]], coded: dict[str, int] | None = None
                           ) -> Hierarchy:
    leaves = [np.bincount(g, minlength=len(lbl)).astype(np.int64)
              for g, lbl in zip(groupings, labels, strict=True)]
    return Hierarchy(name, base, groupings, labels, leaves, coded or {})


def numeric(name: str, values: npt.ArrayLike, widths: tuple[int, ...] = (5, 10, 20),
            top_quantile: float = 0.995, bottom_quantile: float = 0.0,
            unit: str = "") -> Hierarchy:
    """Integers (age, years): unusual values top- and bottom-coded at the quantiles, then
    bands of the given widths, then '*'."""
    v = np.asarray(values, dtype=np.int64)
    lo_orig, hi_orig = int(v.min()), int(v.max())
    top = int(np.floor(np.quantile(v, top_quantile))) if top_quantile < 1 else hi_orig
    bottom = int(np.ceil(np.quantile(v, bottom_quantile))) if bottom_quantile > 0 else lo_orig
    coded = {"top_coded": int((v > top).sum()), "bottom_coded": int((v < bottom).sum()),
             "top": top, "bottom": bottom}
    clipped = np.clip(v, bottom, top)
    domain = np.arange(bottom, top + 1)
    base = (clipped - bottom).astype(np.int64)

    def label(lo: int, hi: int) -> str:
        lo, hi = max(lo, bottom), min(hi, top)
        if hi >= top and top < hi_orig:
            return f"{lo}{unit}以上"
        if lo <= bottom and bottom > lo_orig:
            return f"{hi}{unit}以下"
        return f"{lo}{unit}" if lo == hi else f"{lo}-{hi}{unit}"

    groupings = [np.arange(len(domain), dtype=np.int64)]
    labels = [[label(int(d), int(d)) for d in domain]]
    for w in widths:
        starts = (domain // w) * w
        uniq, inv = np.unique(starts, return_inverse=True)
        groupings.append(inv.astype(np.int64))
        labels.append([label(int(s), int(s) + w - 1) for s in uniq])
    groupings.append(np.zeros(len(domain), dtype=np.int64))
    labels.append(["*"])
    return _hierarchy_from_groups(name, base, groupings, labels, coded)


def prefixes(name: str, values: npt.ArrayLike, lengths: tuple[int, ...]) -> Hierarchy:
    """Codes generalised by cutting them to shorter prefixes (a 町字 code to its 大字), then
    '*'. `lengths` are the prefix lengths after the full value, longest first."""
    v = np.asarray(values).astype(str)
    domain, base = np.unique(v, return_inverse=True)
    groupings = [np.arange(len(domain), dtype=np.int64)]
    labels = [[str(d) for d in domain]]
    for n in lengths:
        cut = np.array([str(d)[:n] + "*" for d in domain])
        uniq, inv = np.unique(cut, return_inverse=True)
        groupings.append(inv.astype(np.int64))
        labels.append([str(u) for u in uniq])
    groupings.append(np.zeros(len(domain), dtype=np.int64))
    labels.append(["*"])
    return _hierarchy_from_groups(name, base.astype(np.int64), groupings, labels)


def flat(name: str, values: npt.ArrayLike) -> Hierarchy:
    """A category with no structure: the value, or '*'."""
    return prefixes(name, values, ())


@dataclass
class Evaluation:
    keys: Codes  # equivalence class per record
    size: Codes  # size of the record's class
    at_risk: npt.NDArray[np.bool_]  # in a class smaller than k or less diverse than l


@dataclass
class Result:
    levels: dict[str, int]
    kept: npt.NDArray[np.bool_]
    columns: dict[str, npt.NDArray[Any]]  # generalised labels of the kept records
    k: int
    l: int  # noqa: E741
    loss: dict[str, float]
    coded: dict[str, dict[str, int]]
    risk: dict[str, Any]
    steps: int


class Infeasible(Exception):
    pass


class Anonymiser:
    def __init__(self, hierarchies: list[Hierarchy], sensitive: npt.ArrayLike | None = None
                 ) -> None:
        self.h = hierarchies
        self.n = len(hierarchies[0].base)
        self.sensitive: Codes | None = None
        if sensitive is not None:
            self.sensitive = np.unique(np.asarray(sensitive).astype(str),
                                       return_inverse=True)[1].astype(np.int64)
        self.weights = [np.bincount(h.base, minlength=len(h.luts[0])) / self.n for h in hierarchies]

    def keys(self, levels: list[int]) -> Codes:
        key = np.zeros(self.n, dtype=np.int64)
        for h, lvl in zip(self.h, levels, strict=True):
            key = key * len(h.labels[lvl]) + h.luts[lvl][h.base]
        return key

    def space(self, levels: list[int]) -> int:
        size = 1
        for h, lvl in zip(self.h, levels, strict=True):
            size *= len(h.labels[lvl])
        return size

    def evaluate(self, levels: list[int], k: int, l: int) -> Evaluation:  # noqa: E741
        key = self.keys(levels)
        space = self.space(levels)
        s_card = int(self.sensitive.max()) + 1 if self.sensitive is not None else 1
        if space * s_card <= BINCOUNT_LIMIT:
            # Small key space (most of the lattice): counting sort, no comparison sort.
            size = np.bincount(key, minlength=space)[key]
            at_risk = size < k
            if self.sensitive is not None and l > 1:
                seen = np.bincount(key * s_card + self.sensitive, minlength=space * s_card) > 0
                distinct = seen.reshape(space, s_card).sum(axis=1)
                at_risk |= distinct[key] < l
            return Evaluation(key, size, at_risk)
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        size = counts[inv]
        at_risk = size < k
        if self.sensitive is not None and l > 1:
            pairs = np.unique(key * s_card + self.sensitive)
            distinct = np.unique(pairs // s_card, return_counts=True)[1]
            at_risk |= distinct[inv] < l
        return Evaluation(key, size, at_risk)

    def loss(self, levels: list[int]) -> float:
        """Mean Loss Metric over the quasi-identifiers (before suppression)."""
        return float(np.mean([h.loss_at(lvl, w) for h, lvl, w in
                              zip(self.h, levels, self.weights, strict=True)]))

    def total_loss(self, levels: list[int], ev: Evaluation) -> float:
        """Loss Metric of the release: generalisation over kept records, 1 per suppressed."""
        suppressed = float(ev.at_risk.mean())
        return self.loss(levels) * (1 - suppressed) + suppressed

    def search(self, k: int, l: int, max_suppression: float  # noqa: E741
               ) -> tuple[list[int], Evaluation, int]:
        """The node of the generalisation lattice with the least total loss whose records at
        risk fit the suppression limit. Nodes are visited in order of their generalisation
        loss, which needs no data (per-attribute losses come from the value counts); since a
        node's total loss is at least its generalisation loss, the walk stops at the first node
        whose generalisation loss reaches the best total found: the answer is the optimum."""
        per_attribute = [[h.loss_at(lvl, w) for lvl in range(h.height + 1)]
                         for h, w in zip(self.h, self.weights, strict=True)]
        nodes = sorted(itertools.product(*[range(h.height + 1) for h in self.h]),
                       key=lambda node: (sum(per_attribute[i][lvl] for i, lvl in enumerate(node)),
                                         node))
        best: tuple[float, list[int], Evaluation] | None = None
        evaluated = 0
        for node in nodes:
            generalisation = sum(per_attribute[i][lvl] for i, lvl in enumerate(node)) / len(node)
            if best is not None and generalisation >= best[0]:
                break
            levels = list(node)
            ev = self.evaluate(levels, k, l)
            evaluated += 1
            if ev.at_risk.mean() <= max_suppression:
                total = self.total_loss(levels, ev)
                if best is None or total < best[0]:
                    best = (total, levels, ev)
        if best is None:  # nothing fits the limit: the top, suppressing what is at risk
            levels = [h.height for h in self.h]
            return levels, self.evaluate(levels, k, l), evaluated
        return best[1], best[2], evaluated

    def single_pass(self, levels: list[int], k: int, l: int) -> tuple[list[int], Evaluation]:  # noqa: E741
        """The baseline: one fixed generalisation, then suppression of what is at risk."""
        return levels, self.evaluate(levels, k, l)

    def result(self, levels: list[int], ev: Evaluation, k: int, l: int, steps: int  # noqa: E741
               ) -> Result:
        kept = ~ev.at_risk
        if not kept.any():
            raise Infeasible("no record can be released at this k and l")
        columns: dict[str, npt.NDArray[Any]] = {}
        for h, lvl in zip(self.h, levels, strict=True):
            columns[h.name] = np.asarray(h.labels[lvl], dtype=object)[h.luts[lvl][h.base[kept]]]
        suppressed = float(ev.at_risk.mean())
        generalisation = self.loss(levels)
        # Loss Metric over kept records plus suppressed records counted as fully lost.
        kept_loss = float(np.mean([
            float(np.mean((h.leaves[lvl][h.luts[lvl][h.base[kept]]] - 1)
                          / max(len(h.luts[0]) - 1, 1)))
            for h, lvl in zip(self.h, levels, strict=True)]))
        loss = {"generalisation_lm": round(generalisation, 6),
                "suppressed_share": round(suppressed, 6),
                "total_lm": round(kept_loss * (1 - suppressed) + suppressed, 6)}
        return Result(levels={h.name: lvl for h, lvl in zip(self.h, levels, strict=True)},
                      kept=kept, columns=columns, k=k, l=l, loss=loss,
                      coded={h.name: h.coded for h in self.h if h.coded},
                      risk=risk(ev.keys[kept], ev.keys, threshold=0.2), steps=steps)

    def run(self, k: int, l: int = 1, max_suppression: float = 0.05) -> Result:  # noqa: E741
        levels, ev, steps = self.search(k, l, max_suppression)
        return self.result(levels, ev, k, l, steps)


def risk(released: Codes, population: Codes, threshold: float = 0.2) -> dict[str, Any]:
    """Re-identification risk of a release whose records fall in the classes `released`,
    drawn from `population` (the source file generalised the same way).

    - prosecutor: the attacker knows the person is in the release; risk 1/f (f: class size
      in the release);
    - journalist: the attacker knows only that the person is in the population; risk 1/F
      (F: the class's size in the population);
    - marketer: the share of all released records an attacker re-identifies by matching
      everyone, (1/n)·Σ f_j/F_j.
    `share_at_risk` is the share of released records whose risk exceeds `threshold`."""
    n = len(released)
    uniq, inv, f_counts = np.unique(released, return_inverse=True, return_counts=True)
    p_uniq, p_counts = np.unique(population, return_counts=True)
    big_f = p_counts[np.searchsorted(p_uniq, uniq)]
    f = f_counts[inv]
    pros = 1.0 / f
    jour = 1.0 / big_f[inv]
    return {
        "records": n, "classes": len(uniq), "threshold": threshold,
        "k": int(f_counts.min()),
        "prosecutor": {"highest": float(pros.max()), "average": float(pros.mean()),
                       "share_at_risk": float((pros > threshold).mean())},
        "journalist": {"highest": float(jour.max()), "average": float(jour.mean()),
                       "share_at_risk": float((jour > threshold).mean())},
        "marketer": {"expected_share": float(np.sum(f_counts / big_f) / n)},
    }


def l_of(keys: Codes, sensitive: npt.ArrayLike) -> int:
    """The smallest number of distinct sensitive values in any class (distinct l-diversity)."""
    s = np.unique(np.asarray(sensitive).astype(str), return_inverse=True)[1].astype(np.int64)
    card = int(s.max()) + 1
    pairs = np.unique(keys * card + s)
    return int(np.unique(pairs // card, return_counts=True)[1].min())
