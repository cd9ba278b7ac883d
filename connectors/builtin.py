"""Registers the connectors that ship with memex, through the same hook as plugins."""

from memex.hookspecs import hookimpl


@hookimpl
def register_connectors(register):
    from connectors.beir import BeirConnector
    from connectors.chat import CONNECTORS as CHAT_CONNECTORS
    from connectors.database import DatabaseConnector
    from connectors.files import FilesConnector
    from connectors.mail import MailConnector
    from connectors.personal import CONNECTORS as PERSONAL_CONNECTORS

    register(BeirConnector)
    # Obsidian vaults, .ics calendars, browser profiles, history and bookmarks, todo.txt and task
    # lists, photos and music: claimed by name, suffix or header, before generic claims.
    for personal_connector in PERSONAL_CONNECTORS:
        register(personal_connector)
    for chat_connector in CHAT_CONNECTORS:  # Slack, WhatsApp, Telegram, Discord, Messenger exports
        register(chat_connector)
    register(MailConnector)  # mbox, Maildir, .eml/.emlx/.msg, suffix-less message files, imap(s)://
    # Claims any SQLite file: connectors for particular SQLite files (browser history...) go above.
    register(DatabaseConnector)
    register(FilesConnector)


@hookimpl
def parser_modules():
    return ["connectors.fileparse", "connectors.preload"]


@hookimpl
def ignored_name(name):
    from connectors.files import is_ignored

    return is_ignored(name)


@hookimpl
def readers():
    from connectors import ocr, speech

    media = "pip install 'memex[media]'"
    pictures = "rapidocr (PP-OCR)" if ocr.available() else None
    transcribes = speech.engine()
    return [
        {"reads": "speech in recordings and videos", "engine": transcribes, "install": media},
        {"reads": "text in pictures and scanned PDFs", "engine": pictures, "install": media},
        {"reads": "HEIC photos", "engine": "pillow-heif" if ocr.heic_readable() else None, "install": media},
        {
            "reads": "speech in other languages than English",
            "engine": transcribes if speech.multilingual() else None,
            "install": "pip install 'memex[media-multilingual]'",
        },
    ]
