"""The hybrid fusion (memex.index.fusion): per query, the list whose best score stands out leads.
A flat, noisy lexical list (common words all over the archive) leaves the ranking to dense search;
a peaked one (a rare name, an identifier) takes the lead. Scores are made up; no index, no model."""

from __future__ import annotations

import pytest

from memex.index import fusion
from memex.index.fusion import dense_weight, fuse, peak


def falling(prefix: str, top: float, step: float, n: int = 40) -> list[tuple[str, float]]:
    """`n` candidates whose scores fall evenly: a list where nothing stands out."""
    return [(f"{prefix}{i}", top - i * step) for i in range(n)]


def place(ranking: list[tuple[str, float]], at: int, chunk_id: str) -> list[tuple[str, float]]:
    """`ranking` with its candidate at position `at` renamed `chunk_id` (its score kept)."""
    ranking = list(ranking)
    ranking[at] = (chunk_id, ranking[at][1])
    return ranking


# Dense search finds the answer clearly ("answer" far above the rest); the lexical list is flat,
# with another chunk on top and the answer far down. And the mirror case.
PEAKED = [("answer", 0.80), *falling("d", 0.60, 0.01)[1:]]
FLAT_LEXICAL = place(place(falling("l", 10.0, 0.1), 0, "other"), 30, "answer")
PEAKED_DENSE_WITH_OTHER_SECOND = place(PEAKED, 1, "other")


def test_a_flat_lexical_list_leaves_the_lead_to_dense():
    ranked = [
        chunk_id for chunk_id, _ in fuse(PEAKED_DENSE_WITH_OTHER_SECOND, FLAT_LEXICAL, [], k=5, depth=40)
    ]
    assert ranked[0] == "answer"
    # With one weight for every query (the first fusion), the flat list's top wins instead.
    fixed = fusion.fixed(PEAKED_DENSE_WITH_OTHER_SECOND, FLAT_LEXICAL, [], 5, depth=40)
    assert fixed[0][0] == "other"


def test_a_peaked_lexical_list_takes_the_lead():
    # A rare name: one chunk far above the other matches; dense similarity is flat, with another
    # chunk on top and the named one down the list.
    lexical = [("named", 8.0), *falling("l", 6.0, 0.1)[1:]]
    lexical = place(lexical, 1, "other")
    dense = place(place(falling("d", 0.70, 0.005), 0, "other"), 30, "named")
    ranked = [chunk_id for chunk_id, _ in fuse(dense, lexical, [], k=5, depth=40)]
    assert ranked[0] == "named"
    assert fusion.fixed(dense, lexical, [], 5, depth=40)[0][0] == "other"


def test_the_weight_follows_the_peaks():
    flat_dense, flat_lexical = falling("d", 0.7, 0.005), falling("l", 10.0, 0.1)
    peaked_lexical = [("x", 20.0), *flat_lexical[1:]]
    assert dense_weight(PEAKED, flat_lexical) > 0.6
    assert dense_weight(flat_dense, peaked_lexical) < 0.4
    assert dense_weight(flat_dense, flat_lexical) == pytest.approx(0.5)
    assert (dense_weight(PEAKED, []), dense_weight([], flat_lexical)) == (1.0, 0.0)


def test_a_peak_does_not_depend_on_the_scale_of_the_scores():
    """BM25 scores grow with the query's length and the archive; a peak is measured in the
    list's own standard deviations, so scaling every score changes nothing."""
    lexical = [("x", 20.0), *falling("l", 10.0, 0.1)[1:]]
    scaled = [(chunk_id, score * 37.0) for chunk_id, score in lexical]
    assert peak(scaled) == pytest.approx(peak(lexical))
    assert peak(falling("l", 10.0, 0.1)) == pytest.approx(peak(falling("l", 1.0, 0.001)))
    assert peak(falling("l", 10.0, 0.1)) < 2.0 < peak(lexical) <= fusion.PEAK_CAP


def test_a_phrase_held_verbatim_still_comes_first_whatever_the_weights():
    """A pasted sentence: the chunk that holds it verbatim leads even when dense leads the fusion
    and that chunk is far down both lists."""
    lexical = place(falling("l", 10.0, 0.1), 25, "verbatim")
    dense = place(PEAKED, 20, "verbatim")
    ranked = fuse(dense, lexical, [("verbatim", 3.0)], k=5, depth=40)
    assert ranked[0][0] == "verbatim"


def test_equal_scores_that_average_a_hair_above_the_best_give_no_peak():
    from memex.index.fusion import fuse, peak

    tied = [(f"c{i}", 0.7) for i in range(11)]  # ten of them average 0.7000000000000001
    assert peak(tied) == 0.0
    assert [c for c, _ in fuse([("d1", 0.9), ("d2", 0.5), ("d3", 0.1)], tied, [], 3)][0] == "d1"
