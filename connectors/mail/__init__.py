"""Email: mbox files, Maildir folders, .eml/.emlx/.msg files and IMAP accounts.

    memex ingest ~/mail/archive.mbox ~/Maildir message.eml imaps://me@mail.example.com/INBOX

Each message is one document, `mail:<Message-ID>` (the same message in an mbox and on an IMAP
server is one document; the first copy met in a run is read), titled by its subject, with an
access list of its sender and recipients (`email:<address>`), and the attributes policy rules
match on: connector "mail", folder, address and domain (every address of the sender and the
recipients), and path for mail on disk.

Files and folders of these kinds inside a folder being ingested are read by this connector too.

Modules: `headers` (the envelope: addresses, dates, ids, charsets), `message` (MIME, with
Python's email package), `outlook` (.msg, with extract-msg), `content` (a message as Elements),
`text` (HTML to text, quoted replies), `threads`, `document` (ids, access list, attributes),
`mailboxes` (mail on disk) and `imap`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from connectors.mail.imap import is_imap_url, read_imap
from connectors.mail.mailboxes import (
    MBOX_SUFFIXES,
    MESSAGE_SUFFIXES,
    Found,
    file_kind,
    is_apple_mbox,
    is_claimable_maildir,
    is_mail_folder,
    read_file,
    read_mail_folder,
    read_maildir,
    read_mbox,
)
from connectors.mail.threads import thread_ids
from memex.connector import Connector
from memex.documents import SourceDocument
from memex.errors import ConfigError, ParseError


class MailConnector(Connector):
    name = "mail"
    file_suffixes = frozenset(MESSAGE_SUFFIXES | MBOX_SUFFIXES)

    @classmethod
    def accepts(cls, target: str) -> bool:
        return is_imap_url(target) or super().accepts(target)

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return file_kind(path) is not None

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return is_apple_mbox(path) or is_claimable_maildir(path) or is_mail_folder(path)

    def load(self) -> Iterator[SourceDocument]:
        found = list(self._documents())
        threads = iter(thread_ids([envelope for _, envelope in found if envelope is not None]))
        for doc, envelope in found:
            thread = next(threads) if envelope is not None else None
            if thread:
                doc.metadata["thread_id"] = thread  # type: ignore[index]
            yield doc  # the same message twice (a copy in another folder): ingest keeps the first

    def _documents(self) -> Iterator[Found]:
        if is_imap_url(self.target):
            if self.data_dir is None:
                raise ConfigError(
                    "reading a mail server needs a folder for its sync state: ingest it with memex"
                )
            yield from read_imap(self.target, self.data_dir / "imap")
            return
        path = Path(self.target).expanduser()
        if path.is_dir():
            if is_apple_mbox(path):
                yield from read_mbox(path / "mbox")
            elif is_claimable_maildir(path):
                yield from read_maildir(path)
            elif is_mail_folder(path):
                yield from read_mail_folder(path)
            else:
                raise ParseError(f"{path} is not a mail folder (a Maildir, or a folder of messages)")
        elif path.is_file():
            if file_kind(path) is None:
                raise ParseError(f"{path} is not a mail file (mbox, .eml, .emlx or .msg)")
            yield from read_file(path)
        else:
            raise ParseError(f"{path}: no such file or folder")
