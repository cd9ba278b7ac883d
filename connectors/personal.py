"""Personal archives: notes vaults, calendars, browser history and bookmarks, to-do lists and media
tags. Each claims its files precisely (by name, suffix or header), so they are registered before
the connectors that claim generic files (SQLite databases, any file)."""

from connectors.browser import BrowserConnector
from connectors.calendar import CalendarConnector
from connectors.media import MediaConnector
from connectors.notes import NotesConnector
from connectors.todo import TodoConnector

CONNECTORS = (NotesConnector, CalendarConnector, BrowserConnector, TodoConnector, MediaConnector)
