"""Search behaviour beyond access: phrase matches, narrowing, modes."""

from __future__ import annotations

import pytest

from memex.api.reads import Reads
from memex.index import Narrowing


@pytest.fixture
def notes(fake_memex, kestrel):
    folder = kestrel / "handbook"
    (folder / "a-scattered.txt").write_text(
        "Early? The whole company office opens. Company opens early, whole office."
    )
    (folder / "b-verbatim.txt").write_text(
        "Some preamble about many other things that are not relevant at all to anything here. "
        "On Tuesdays the office opens early for the whole company, said the memo."
    )
    fake_memex.ingest([str(folder)])
    return fake_memex


def test_a_verbatim_phrase_outranks_the_same_words_scattered(notes):
    pat = notes.policy.principal("pat")
    hits = Reads(notes).search("the office opens early for the whole company", principal=pat, k=3)
    assert hits[0].uri.endswith("b-verbatim.txt")


def test_narrowing_to_a_source_only_narrows(notes, kestrel):
    pat, vic = notes.policy.principal("pat"), notes.policy.principal("vic")
    target = f"file:{kestrel}/handbook/a-scattered.txt"
    only = Narrowing(source_ids=frozenset({target}))
    assert {h.source_id for h in Reads(notes).search("office", principal=pat, k=10, narrowing=only)} == {
        target
    }
    assert notes.index.search("office", principal=vic, k=10, narrowing=only) == []  # vic may not read it


def test_unknown_mode_is_an_error(notes):
    with pytest.raises(ValueError, match="unknown search mode 'fuzzy'"):
        notes.index.search("x", principal=notes.policy.principal("pat"), mode="fuzzy")


def test_an_index_from_before_heading_columns_is_refilled(notes, kestrel):
    """Lexical indexes written with one text column are rebuilt from the stored chunks on open."""
    from memex.index import Index

    pat = notes.policy.principal("pat")
    before = [
        h.chunk_id for h in notes.index.search("office opens early", principal=pat, k=5, mode="lexical")
    ]
    db = notes.index._lexical.db
    db.execute("DROP TABLE fts")
    db.execute("CREATE VIRTUAL TABLE fts USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2')")
    notes.index.close()
    reopened = Index.open(notes.paths.store, embedder=notes.embedder)
    assert not reopened._lexical.needs_text
    after = [h.chunk_id for h in reopened.search("office opens early", principal=pat, k=5, mode="lexical")]
    assert after == before and after
    reopened.close()
    notes._index = None


def test_a_name_is_a_phrase():
    from memex.index.lexical import fts_phrase

    assert fts_phrase("Vogelwarte Sempach") == '"vogelwarte sempach"'
    assert fts_phrase("Sempach!") == '"sempach"'
    assert fts_phrase("?!") is None


def test_matching_a_rare_word_beats_not_matching_it():
    """When the lexical list holds every chunk that matched at all, a chunk missing from it scores
    below the weakest match, even when that match is the only one."""
    from memex.index import fuse

    dense = [(f"d{n}", 0.9 - n / 100) for n in range(40)]  # a full list: "matched" is not "missing"
    dense_tie = [*dense[:20], ("rare", 0.5), ("other", 0.5), *dense[20:38]]
    ranked = dict(fuse(dense_tie, [("rare", 7.0)], [], k=100, depth=40))
    assert ranked["rare"] > ranked["other"]
    cut = [(f"l{n}", 9.0 - n / 10) for n in range(39)] + [("rare", 5.0)]
    ranked = dict(fuse(dense_tie, cut, [], k=100, depth=40))  # a list cut at depth: missing = weakest
    assert ranked["rare"] == ranked["other"]
