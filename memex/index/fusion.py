"""Hybrid ranking: one list from the dense (embedding) candidates and the lexical (BM25) ones.

Both lists' scores are standardised over their own candidates (z-scores) and summed with weights.
The weights are set per query, from how the lists themselves look, so no labelled data is needed:
a lexical list whose best scores stand out from the rest (rare query words that few chunks hold:
a name, a pasted phrase, an identifier) gets more weight; a flat one (common words spread over
many chunks, the usual case for a question in words of one's own) gets less, and dense search,
which ranks by meaning, leads. A chunk holding the query verbatim gets a bonus on top, so a
pasted phrase or a two-word name finds its source first. Measured on SciFact and on development
sets drawn from mail, chat, database records and documents (benchmarks/tune_fusion.py,
BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

Ranking = Sequence[tuple[str, float]]

PHRASE_BONUS = 2.0  # in standard deviations
PEAK_OF = 10  # a list's peak: its best score against the next PEAK_OF, in their standard deviation
PEAK_CAP = 10.0  # a best score far above identical others counts as this many deviations
# The weights follow the square roots of the two peaks: enough to lean towards the list that
# stands out, without letting one list decide alone (benchmarks/tune_fusion.py).
PEAK_POWER = 0.5


def fuse(
    dense: Ranking,
    lexical: Ranking,
    phrase: Ranking,
    k: int,
    *,
    depth: int | None = None,
    weak: Collection[str] = frozenset(),
) -> list[tuple[str, float]]:
    """The best `k` candidates, best first, with their fused scores. A chunk missing from a list
    cut at `depth` gets that list's lowest score; missing from a shorter list (everything that
    matched at all is in it: two rare words that only one chunk holds) it gets one standard
    deviation less, so matching beats not matching. `weak` chunks (records that hold too few of
    the query's words) come after all others, in their own order."""
    weight = dense_weight(dense, lexical)
    return combine(dense, lexical, phrase, k, depth=depth, weak=weak, dense_weight=weight)


def dense_weight(dense: Ranking, lexical: Ranking) -> float:
    """The dense list's share of the fused score for this query, between 0 and 1: its peak's
    share of the two peaks (each to PEAK_POWER). An empty list gets no share."""
    if not lexical:
        return 1.0
    if not dense:
        return 0.0
    d, lx = peak(dense) ** PEAK_POWER, peak(lexical) ** PEAK_POWER
    return d / (d + lx) if d + lx > 0 else 0.5


def peak(ranking: Ranking) -> float:
    """How far the best score of a list stands above the PEAK_OF scores that follow it, in
    standard deviations of those scores: about 2 for evenly falling scores, more where one
    candidate stands out (at most PEAK_CAP), 0 where the best ties with the rest. A list of
    fewer than three says nothing (1)."""
    values = sorted((score for _, score in ranking), reverse=True)[: PEAK_OF + 1]
    if len(values) < 3:
        return 1.0
    rest = values[1:]
    mean = sum(rest) / len(rest)
    spread = (sum((v - mean) ** 2 for v in rest) / len(rest)) ** 0.5
    if spread == 0:
        return PEAK_CAP if values[0] > mean else 0.0
    # max(0, ...): equal scores can average a hair above the best in floating point
    return min(max(0.0, (values[0] - mean) / spread), PEAK_CAP)


def combine(
    dense: Ranking,
    lexical: Ranking,
    phrase: Ranking,
    k: int,
    *,
    depth: int | None,
    weak: Collection[str] = frozenset(),
    dense_weight: float,
) -> list[tuple[str, float]]:
    """A convex combination of the two lists' standardised scores, `dense_weight` to the dense
    one, plus the phrase bonus; `weak` last."""
    z_dense, floor_dense = standardised(dense, complete=depth is not None and len(dense) < depth)
    z_lexical, floor_lexical = standardised(lexical, complete=depth is not None and len(lexical) < depth)
    verbatim = {chunk_id for chunk_id, _ in phrase}
    scores = {
        chunk_id: dense_weight * z_dense.get(chunk_id, floor_dense)
        + (1 - dense_weight) * z_lexical.get(chunk_id, floor_lexical)
        + (PHRASE_BONUS if chunk_id in verbatim else 0.0)
        for chunk_id in {*z_dense, *z_lexical, *verbatim}
    }
    return sorted(scores.items(), key=lambda item: (item[0] in weak, -item[1], item[0]))[:k]


def fixed(
    dense: Ranking,
    lexical: Ranking,
    phrase: Ranking,
    k: int,
    *,
    depth: int | None = None,
    dense_weight: float = 0.5,
) -> list[tuple[str, float]]:
    """The first fusion memex shipped: the same combination with one weight for every query
    (0.5, chosen on SciFact). Kept for the benchmark's comparison."""
    return combine(dense, lexical, phrase, k, depth=depth, dense_weight=dense_weight)


def standardised(ranking: Ranking, *, complete: bool) -> tuple[dict[str, float], float]:
    """Z-scores of a ranking, and the score of a chunk not in it."""
    if not ranking:
        return {}, 0.0
    values = [score for _, score in ranking]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
    z = {chunk_id: (score - mean) / spread for chunk_id, score in ranking}
    lowest = min(z.values())
    return z, lowest - 1.0 if complete else lowest
