"""GX's Data Docs views with their Jinja templates compiled once per process.

GX's site builder is made anew for every build, and with it each view's Jinja Environment:
every page rendered compiled GX's templates again (parsing and code generation were most of a
Data Docs build: 0.1 s of a validated NGSI harvest's 0.9 s). These views are GX's own, given a
bytecode cache the process shares, so a template's source is compiled the first time only; the
site names them by GX's `view` setting (datadocs._site). Jinja checks each template's source
against its cached code, so a changed template is compiled again.
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2.bccache import Bucket, BytecodeCache

__all__ = ["IndexPageView", "PageView"]


class _ProcessCache(BytecodeCache):
    """Compiled templates in memory, by Jinja's key (template name and source checksum)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None:
            bucket.bytecode_from_string(found)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _ProcessCache()


class _CompiledOnce:
    """A GX page view whose templates are compiled once per process."""

    env: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _COMPILED


class PageView(_CompiledOnce, DefaultJinjaPageView):
    """GX's page view (suites, validation results)."""


class IndexPageView(_CompiledOnce, DefaultJinjaIndexPageView):
    """GX's index page view."""
