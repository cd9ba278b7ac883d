from memex.documents import Element
from memex.ingest.chunking import chunk_elements


def test_sections_travel_with_their_text():
    elements = [
        Element("Vacation", kind="title"),
        Element("Everyone gets 25 days. " * 12, section=("Vacation",)),
        Element("Sick leave", kind="title"),
        Element("Tell your manager before 10:00. " * 10, section=("Sick leave",)),
    ]
    pieces = chunk_elements(elements, title="handbook.md")
    assert [p.section for p in pieces] == ["Vacation", "Sick leave"]
    assert pieces[0].text.startswith("handbook.md > Vacation\nEveryone gets 25 days.")
    assert pieces[1].text.startswith("handbook.md > Sick leave\nTell your manager")


def test_short_sections_run_on_with_their_heading_inline():
    elements = [
        Element("Wi-Fi", kind="title"),
        Element("The network is kestrel-office.", section=("Wi-Fi",)),
        Element("Parking", kind="title"),
        Element("Two spaces are reserved.", section=("Parking",)),
    ]
    (piece,) = chunk_elements(elements, title="guide.txt")
    assert (
        piece.text == "guide.txt > Wi-Fi\nThe network is kestrel-office.\nParking\nTwo spaces are reserved."
    )


def test_long_text_is_split_at_sentences_within_the_limit():
    sentence = "This sentence is about forty-five characters. "
    pieces = chunk_elements([Element(sentence * 100)], title="t", max_chars=500)
    assert len(pieces) > 1
    assert all(len(p.body) <= 500 for p in pieces)
    assert all(p.body.endswith("characters.") for p in pieces)
    assert "".join(p.body.replace(" ", "") for p in pieces) == (sentence * 100).replace(" ", "")


def test_unbroken_text_is_hard_wrapped():
    pieces = chunk_elements([Element("x" * 2500)], title="t", max_chars=1000)
    assert [len(p.body) for p in pieces] == [1000, 1000, 500]


def test_blank_elements_make_no_chunks():
    assert chunk_elements([Element("   "), Element("\n\n")], title="t") == []


def test_pages_are_kept():
    pieces = chunk_elements(
        [Element("a " * 300, page=1), Element("b " * 300, page=2)], title="t", max_chars=700, min_chars=100
    )
    assert [p.page for p in pieces] == [1, 2]


def test_documents_of_headings_only_keep_every_heading():
    elements = [Element(t, kind="title") for t in ("Falcon 2", "EUR 1,290 per unit", "Gateway EUR 480")]
    (piece,) = chunk_elements(elements, title="deck.pptx")
    assert piece.text == "deck.pptx > Falcon 2\nEUR 1,290 per unit\nGateway EUR 480"


def test_a_lone_heading_is_a_chunk():
    (piece,) = chunk_elements([Element("Only a title", kind="title")], title="t.md")
    assert piece.text == "t.md > Only a title\nOnly a title"
