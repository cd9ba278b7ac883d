"""The files connector: walking folders, ignoring temp files, delegating claimed files."""

from __future__ import annotations

import pytest

from memex.ingest.plugins import connectors


def test_a_file_another_connector_claims_is_read_by_it(tmp_path, monkeypatch):
    """Files and folders claimed by a connector are delegated during a folder walk."""
    from collections.abc import Iterator

    from connectors import files
    from memex.connector import Connector
    from memex.documents import SourceDocument

    class Notes(Connector):
        name = "notes"
        file_suffixes = frozenset({".note"})

        @classmethod
        def claims_folder(cls, path):
            return (path / ".vault").is_dir()

        def load(self) -> Iterator[SourceDocument]:
            if self.target.endswith("broken.note"):
                raise ValueError("unreadable notebook")
            yield SourceDocument(
                source_id=f"notes:{self.target}", uri=self.target, title="n", connector="notes", attributes={}
            )

    (tmp_path / "a.note").write_text("x")
    (tmp_path / "broken.note").write_text("x")
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "vault" / ".vault").mkdir(parents=True)
    (tmp_path / "vault" / "inside.txt").write_text("x")
    docs = list(files.FilesConnector(str(tmp_path), others=[Notes, files.FilesConnector]).load())
    assert [(d.connector, d.source_id.rsplit("/", 1)[1]) for d in docs] == [
        ("notes", "a.note"),
        ("notes", "broken.note"),
        ("files", "plain.txt"),
        ("notes", "vault"),
    ]
    broken = docs[1]
    assert broken.source_id == f"file:{tmp_path}/broken.note"
    with pytest.raises(Exception, match="notes: unreadable notebook"):
        broken.elements()


def test_temp_hidden_and_partial_files_are_ignored(tmp_path):
    from connectors import files

    names = [
        "keep.md",
        ".hidden.md",
        "notes.md~",
        ".notes.md.swp",
        "~$report.docx",
        "movie.part",
        "x.crdownload",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    docs = list(files.FilesConnector(str(tmp_path), others=connectors()).load())
    assert [d.title for d in docs] == ["keep.md"]
