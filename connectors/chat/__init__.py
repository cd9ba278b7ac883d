"""Chat exports: Slack workspace exports, WhatsApp chats, Telegram Desktop, DiscordChatExporter,
Messenger and Instagram. Each reader turns an export into conversations (`model`); `windows`
cuts them into conversation windows, one document each."""

from connectors.chat.discord import DiscordConnector
from connectors.chat.meta import MessengerConnector
from connectors.chat.slack import SlackConnector
from connectors.chat.telegram import TelegramConnector
from connectors.chat.whatsapp import WhatsAppConnector

CONNECTORS = (SlackConnector, WhatsAppConnector, TelegramConnector, DiscordConnector, MessengerConnector)

__all__ = [
    "CONNECTORS",
    "DiscordConnector",
    "MessengerConnector",
    "SlackConnector",
    "TelegramConnector",
    "WhatsAppConnector",
]
