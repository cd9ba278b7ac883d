"""Imported by the parser fork server so that every parse worker starts warm."""

from connectors.fileparse import warm_up

warm_up()
