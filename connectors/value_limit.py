"""The longest text value a record's properties keep whole (CITYPIPE_MAX_VALUE_BYTES).

The properties' JSON (pipelines/core/properties.py) cuts a longer text value to this many
bytes and says so; a connector that hands a value on as its JSON text (orjson.Fragment, which
nothing can cut) does so only where no text in it is longer (cityjson_walk), so both read the
limit here.
"""

from __future__ import annotations

import os

from citypipe.geo.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_VALUE_BYTES", "MAX_VALUE_ENV", "max_value_bytes"]
MAX_VALUE_ENV = "CITYPIPE_MAX_VALUE_BYTES"
DEFAULT_MAX_VALUE_BYTES = 1 << 20


def max_value_bytes() -> int:
    """The longest text value kept whole, in UTF-8 bytes: CITYPIPE_MAX_VALUE_BYTES, else 1 MiB."""
    text = os.environ.get(MAX_VALUE_ENV)
    if text is None:
        return DEFAULT_MAX_VALUE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(
            f"{MAX_VALUE_ENV}={text!r}: expected a number of bytes (1 or more)"
        )
    return value
