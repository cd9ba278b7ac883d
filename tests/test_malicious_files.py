"""Malicious files: zip bombs refused from the central directory before anything is unpacked (per
entry, total, entry count, ratio) in every zip-based format memex opens and in chat exports, and
XML that declares entities (billion laughs, external entities) refused without expanding them."""

from __future__ import annotations

import random
import time
import zipfile
from pathlib import Path

import pytest

from connectors import zipcheck
from connectors.chat.archive import Export, parse_zip_member
from connectors.fileparse import parse_file
from memex.errors import ParseError
from tests.malformed import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    MINIMAL_DOCX,
    MiB,
    forge_sizes,
    write_zip,
    zeros_member,
)


@pytest.fixture
def no_unpacking(monkeypatch):
    """Any attempt to open a zip member fails the test: refusals come from the directory alone."""

    real = zipfile.ZipFile.open

    def refuse(self, name, mode="r", *args, **kwargs):
        if mode == "r":
            raise AssertionError("a member was opened")
        return real(self, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_a_member_larger_than_the_entry_limit_is_refused(tmp_path, no_unpacking):
    path = write_zip(tmp_path / "big.docx", {**MINIMAL_DOCX, "word/big.xml": b"<a/>" * 100})
    forge_sizes(path, {"word/big.xml": (600 * MiB, 300 * MiB)})  # ratio 2: only the size is wrong
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == (
        "refused as a possible zip bomb: word/big.xml unpacks to 600.0 MB (more than 512.0 MB)"
    )


def test_members_that_add_up_past_the_total_are_refused(tmp_path, no_unpacking):
    members = {f"ppt/slides/slide{i}.xml": b"<a/>" * 100 for i in range(3)}
    path = write_zip(tmp_path / "deck.pptx", {**MINIMAL_DOCX, **members})
    forge_sizes(path, {name: (400 * MiB, 200 * MiB) for name in members})
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == "refused as a possible zip bomb: unpacks to more than 1.0 GB"


def test_too_many_entries_are_refused(tmp_path, no_unpacking):
    path = tmp_path / "many.odt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(10_001):
            archive.writestr(f"p/{i}", b"")
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == "refused as a possible zip bomb: more than 10,000 entries"


def test_a_member_packed_too_tightly_is_refused(tmp_path, no_unpacking):
    path = write_zip(tmp_path / "ratio.docx", {**MINIMAL_DOCX, "word/media/x.bin": zeros_member(20 * MiB)})
    packed = zipfile.ZipFile(path).getinfo("word/media/x.bin").compress_size
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == (
        f"refused as a possible zip bomb: word/media/x.bin is 20.0 MB packed into {packed / 1024:,.1f} KB "
        f"(ratio {20 * MiB / packed:,.0f}, more than 200)"
    )


def test_many_small_members_packed_too_tightly_are_refused(tmp_path, no_unpacking):
    """Each member is under the size where its own ratio counts; the archive as a whole is not."""
    members = {f"OEBPS/c{i}.xhtml": zeros_member(MiB // 2) for i in range(40)}
    path = write_zip(tmp_path / "book.epub", {"mimetype": "application/epub+zip", **members})
    packed = sum(i.compress_size for i in zipfile.ZipFile(path).infolist())
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == (
        f"refused as a possible zip bomb: 20.0 MB packed into {packed / 1024:,.1f} KB "
        f"(ratio {(20 * MiB + 20) / packed:,.0f}, more than 200)"
    )


def test_ordinary_archives_pass(tmp_path):
    path = write_zip(tmp_path / "notes.docx", MINIMAL_DOCX)
    assert [e.text for e in parse_file(path)] == ["Falcon 2 sensor notes"]
    # Large but honest: 2 MB of random bytes do not compress.
    noise = random.Random(7).randbytes(2 * MiB)
    infos = zipfile.ZipFile(write_zip(tmp_path / "x.zip", {"a.bin": noise})).infolist()
    zipcheck.check_archive(infos)


def test_not_a_zip_is_a_corrupt_file(tmp_path):
    path = tmp_path / "report.odt"
    path.write_bytes(b"%PDF-1.4 not a zip at all")
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == "corrupt OpenDocument file (not a valid zip archive)"


# --- chat exports ------------------------------------------------------------------------------


def test_a_chat_export_packed_too_tightly_is_refused_whole(tmp_path, no_unpacking):
    members = {f"general/2024-0{i}-01.json": zeros_member(MiB // 2) for i in range(1, 9)}
    path = write_zip(tmp_path / "slack.zip", {"users.json": b"[]", "channels.json": b"[]", **members})
    with pytest.raises(ParseError, match=r"^refused as a possible zip bomb: 4\.0 MB packed into "):
        Export(path, root_marker="users.json")


def test_a_bomb_member_of_a_chat_export_is_refused_alone(tmp_path):
    path = write_zip(
        tmp_path / "WhatsApp Chat.zip",
        {"_chat.txt": b"[01/02/2024, 10:00:00] Ana: see the file", "big.txt": b"x" * 1000, "ok.txt": b"fine"},
    )
    forge_sizes(path, {"big.txt": (3000 * MiB, 1500 * MiB)})
    with Export(path) as export:
        assert export.read("ok.txt") == b"fine"
        with pytest.raises(ParseError) as caught:
            export.read("big.txt")
    assert (
        str(caught.value) == "refused as a possible zip bomb: big.txt unpacks to 2.9 GB (more than 512.0 MB)"
    )
    with pytest.raises(ParseError) as caught:
        parse_zip_member(path, "big.txt")
    assert (
        str(caught.value) == "refused as a possible zip bomb: big.txt unpacks to 2.9 GB (more than 512.0 MB)"
    )


def test_a_docx_inside_a_chat_export_is_checked_too(tmp_path):
    inner = write_zip(tmp_path / "inner.docx", {**MINIMAL_DOCX, "word/media/x.bin": zeros_member(8 * MiB)})
    path = write_zip(tmp_path / "export.zip", {"files/report.docx": inner.read_bytes()})
    with pytest.raises(ParseError, match=r"^refused as a possible zip bomb: word/media/x\.bin is 8\.0 MB"):
        parse_zip_member(path, "files/report.docx")


# --- XML entities ------------------------------------------------------------------------------

LAUGHS_REFUSED = (
    "refused: {name} declares XML entities (EntitiesForbidden), as entity-expansion attacks "
    "(billion laughs) and external-entity reads do"
)


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "xxe"])
def test_xml_declaring_entities_is_refused_without_expanding_them(tmp_path, payload):
    path = tmp_path / "feed.xml"
    path.write_bytes(payload)
    began = time.perf_counter()
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert time.perf_counter() - began < 2
    assert str(caught.value) == LAUGHS_REFUSED.format(name="feed.xml")


@pytest.mark.parametrize(
    ("name", "members", "part"),
    [
        ("laughs.docx", {**MINIMAL_DOCX, "word/document.xml": BILLION_LAUGHS}, "word/document.xml"),
        ("laughs.xlsx", {**MINIMAL_DOCX, "_rels/.rels": EXTERNAL_ENTITY}, "_rels/.rels"),
        (
            "laughs.odt",
            {"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": BILLION_LAUGHS},
            "content.xml",
        ),
        (
            "laughs.epub",
            {"mimetype": "application/epub+zip", "OEBPS/ch1.xhtml": BILLION_LAUGHS},
            "OEBPS/ch1.xhtml",
        ),
    ],
)
def test_xml_entities_inside_zipped_formats_are_refused(tmp_path, name, members, part):
    path = write_zip(tmp_path / name, members)
    with pytest.raises(ParseError) as caught:
        parse_file(path)
    assert str(caught.value) == LAUGHS_REFUSED.format(name=part)


def test_xml_without_entities_is_read(tmp_path):
    path = tmp_path / "plain.xml"
    path.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE note>\n<note><to>Lisbon office</to></note>\n')
    assert [e.text for e in parse_file(path)] == ["Lisbon office"]


def test_real_zip_formats_pass_the_checks():
    """No document of the unstructured corpus is refused as a bomb or for its XML."""
    from tests.conftest import data_dir

    corpus = data_dir("documents_unstructured")
    from connectors.fileparse import ZIPPED, _check_zipped

    checked = 0
    for path in sorted(Path(corpus).rglob("*")):
        if path.suffix.lower() in ZIPPED and path.name != "password_protected.xlsx":
            _check_zipped(path, ZIPPED[path.suffix.lower()])
            checked += 1
    assert checked == 43
