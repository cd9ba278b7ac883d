"""Registers the connectors that ship with memex, through the same hook as plugins."""

from memex.hookspecs import hookimpl


@hookimpl
def register_connectors(register):
    from connectors.beir import BeirConnector
    from connectors.chat import CONNECTORS as CHAT_CONNECTORS
    from connectors.database import DatabaseConnector
    from connectors.files import FilesConnector
    from connectors.mail import MailConnector

    register(BeirConnector)
    for chat_connector in CHAT_CONNECTORS:  # Slack, WhatsApp, Telegram, Discord, Messenger exports
        register(chat_connector)
    register(MailConnector)  # mbox, Maildir, .eml/.emlx/.msg, suffix-less message files, imap(s)://
    # Claims any SQLite file: connectors for particular SQLite files (browser history...) go above.
    register(DatabaseConnector)
    register(FilesConnector)
