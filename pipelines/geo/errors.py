"""The error family: whose fault, and whether trying again can help.

Every message names the input and the reason, so the CLI can print it as it is.
"""

from __future__ import annotations

__all__ = [
    "CitypipeError",
    "ConfigurationError",
    "DataError",
    "NotFeatureData",
    "UnavailableError",
    "UnknownCRS",
    "UnknownFormat",
]


class CitypipeError(Exception):
    """Base of every error citypipe reports to a user instead of a traceback."""

    retry: bool = False


class ConfigurationError(CitypipeError):
    """The catalog, a flag or an environment variable is wrong: fix it, then run again."""


class UnavailableError(CitypipeError):
    """A source could not be reached or read right now: trying again may help."""

    retry = True


class DataError(CitypipeError):
    """The input itself cannot be read as feature data."""


class UnknownFormat(DataError):
    """No connector recognises the content."""


class NotFeatureData(DataError):
    """The content is a known document that holds no features (capabilities, schema, context)."""


class UnknownCRS(DataError):
    """The source's coordinates are in no CRS citypipe can name: none is declared where the
    format defines none, or the declared one is unknown to pyproj, unsafe (a PROJ string, a
    file) or places nothing on longitude/latitude (geocentric, vertical, engineering, another
    body's). The whole source is refused (never guessed, never half taken); `--crs` names the
    CRS."""
