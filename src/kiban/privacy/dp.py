"""Differentially private counts and sums with OpenDP (the library does the sampling; this
module only decides scales from ε and the sensitivity).

Neighbouring data sets differ by one person (add or remove). A histogram where each person
falls in exactly one cell has L1 sensitivity 1: noise of scale 1/ε on every cell costs ε for
the whole histogram. A sum of values clamped to [0, U] per cell has L1 sensitivity U: scale U/ε.
Counts get integer (discrete Laplace) noise; negative noisy counts are published as drawn,
so the release stays unbiased (post-processing to 0 is the reader's choice)."""

from __future__ import annotations

import math

import opendp.prelude as dp

dp.enable_features("contrib")


def noisy_counts(counts: list[int], epsilon: float) -> tuple[list[int], float]:
    """Each person in at most one cell: returns the noisy counts and the ε OpenDP's privacy
    map certifies for them."""
    scale = 1.0 / epsilon
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int),
                             scale=scale)
    return list(meas(list(counts))), float(meas.map(1))  # type: ignore[no-untyped-call]


def noisy_sums(sums: list[float], upper: float, epsilon: float) -> tuple[list[float], float]:
    """Per-cell sums of values each clamped to [0, upper], each person in at most one cell."""
    scale = upper / epsilon
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=float, nan=False)),
                             dp.l1_distance(T=float), scale=scale)
    return (list(meas([float(s) for s in sums])),
            float(meas.map(float(upper))))  # type: ignore[no-untyped-call]


def count_stddev(epsilon: float) -> float:
    """Standard deviation of the noise of one count: the discrete Laplace of scale b = 1/ε,
    P(k) ∝ t^|k| with t = e^(-1/b), has variance 2t/(1-t)²."""
    t = math.exp(-epsilon)
    return math.sqrt(2 * t) / (1 - t)
