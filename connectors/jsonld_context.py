"""JSON-LD for NGSI-LD, done by pyld and offline: the short name an attribute has under its
entity's @context.

Entities name their @context by URL. citypipe serves the contexts it ships (schemas/jsonld/
contexts.yaml: the ETSI core context v1.9, the W3C data-integrity context that one imports, the
Smart Data Models domain contexts, each under every URL sources use for it) and, where a
source's configuration says so, local files for other URLs or URLs it allows to be fetched
(`ContextPolicy`); nothing else is loaded. An entry that cannot be resolved is left out, with
a warning (`Terms.warnings`) the run reports once: the names it would have defined keep the
names the entity gives them (the core context's @vocab catches them).

The core context, recognised by what it defines, not by its address (`is_core`), is applied
last, as the NGSI-LD API does: it is protected, so applied first it
would forbid the domain contexts' own definitions (location, name ...), and absent, every term
no domain context defines would be dropped.

pyld processes a context of thousands of terms in milliseconds, and expanding every entity with
it would cap a broker harvest at a few hundred entities a second. So each distinct @context is
processed once (pyld keeps the result in this object's cache), and each name once per context:
after that an attribute costs a dict look-up. Sources that configure no contexts share one
`Contexts` in the process (`for_source`): what it resolves depends on the shipped files alone,
so a run's second NGSI source, or a listener's next landing, processes nothing again.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

from citypipe.connectors.http import HttpClient
from citypipe.geo.errors import ConfigurationError
from citypipe.schemas import HERE as SCHEMAS

__all__ = [
    "CORE_CONTEXT", "ContextPolicy", "Contexts", "Terms", "for_source", "is_core", "shipped",
]  # fmt: skip

_SHIPPED = SCHEMAS / "jsonld"


@cache
def _index() -> dict[str, Any]:
    with open(_SHIPPED / "contexts.yaml", encoding="utf-8") as f:
        index: dict[str, Any] = yaml.safe_load(f)
    return index


def _stored(url: str) -> Path:
    """Where a shipped context lies: under the host and path of its URL."""
    parts = urlsplit(url)
    path = _SHIPPED / parts.netloc / parts.path.strip("/")
    return path if path.suffix else path.with_name(path.name + ".jsonld")


@cache
def shipped() -> dict[str, Path]:
    """URL -> the file citypipe ships for it."""
    return {url: _stored(urls[0]) for urls in _index()["contexts"] for url in urls}


_CORE_TERMS = ("Property", "Relationship", "GeoProperty")
_NGSI_LD = "https://uri.etsi.org/ngsi-ld/"


def is_core(document: Any) -> bool:
    """Whether a context document is an NGSI-LD core context, of any version and under any
    address (a broker's copy, a mirror): it maps the `ngsi-ld` prefix to the ETSI namespace
    and defines the core's attribute kinds in it."""
    context = document.get("@context") if isinstance(document, Mapping) else None
    if not isinstance(context, Mapping) or context.get("ngsi-ld") != _NGSI_LD:
        return False
    return all(
        context.get(term) in (f"ngsi-ld:{term}", f"{_NGSI_LD}{term}") for term in _CORE_TERMS
    )


def _shipped_core() -> str:
    for urls in _index()["contexts"]:
        if is_core(orjson.loads(_stored(urls[0]).read_bytes())):
            return str(urls[0])
    raise ConfigurationError("schemas/jsonld/contexts.yaml lists no NGSI-LD core context")


CORE_CONTEXT: str = _shipped_core()
"""The NGSI-LD core context citypipe ships (contexts.yaml): applied last where an entity's
@context names no core context citypipe can read."""


@dataclass(frozen=True)
class ContextPolicy:
    """Which contexts a source may use beyond those citypipe ships: its `contexts:` option,
    `{files: {URL: path}, allow: [URL prefix, ...]}`."""

    files: tuple[tuple[str, str], ...] = ()
    """URL -> a local file holding that context."""
    allow: tuple[str, ...] = ()
    """URL prefixes that may be fetched (through the shared HTTP client)."""

    @classmethod
    def of(cls, option: Any) -> ContextPolicy:
        if option is None:
            return cls()
        files = option.get("files") or {} if isinstance(option, Mapping) else None
        allow = option.get("allow") or [] if isinstance(option, Mapping) else None
        if (
            not isinstance(option, Mapping)
            or set(option) - {"files", "allow"}
            or not isinstance(files, Mapping)
            or not isinstance(allow, list)
        ):
            raise ConfigurationError(
                "contexts: expected {files: {URL: path}, allow: [URL prefix, ...]}"
            )
        return cls(tuple((str(k), str(v)) for k, v in files.items()), tuple(map(str, allow)))


class _Unavailable(Exception):
    """A context URL that is neither shipped, nor a configured file, nor allowed."""


def _key(context: Any) -> Hashable:
    """A context as a dictionary key: URLs as they are, inline contexts as canonical JSON."""
    if isinstance(context, str | None):
        return context
    try:
        return orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than JSON-LD contexts are
        return "<unreadable>"


class Contexts:
    """The contexts one source may use, each loaded once, and the names under each @context."""

    def __init__(self, policy: ContextPolicy | None = None, client: HttpClient | None = None):
        self.policy = policy or ContextPolicy()
        self._files = dict(self.policy.files)
        self._client = client
        self._documents: dict[str, Any] = {}
        self._terms: dict[Hashable, Terms] = {}
        self._resolved: dict[str, Any] = {}  # pyld's processed contexts, this object's own
        # pyld imported where it is used, not at load: format detection loads this module
        from pyld.context_resolver import ContextResolver

        self.options = {
            "documentLoader": self._load,
            "contextResolver": ContextResolver(self._resolved, self._load),
        }

    def document(self, url: str) -> Any:
        """The context document at `url`, parsed."""
        if url in self._documents:
            return self._documents[url]
        path = self._files.get(url) or shipped().get(url)
        if path is not None:
            try:
                doc = orjson.loads(Path(path).read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                raise ConfigurationError(f"contexts: {url} -> {path}: cannot be read: {e}") from e
        elif any(url.startswith(prefix) for prefix in self.policy.allow):
            self._client = self._client or HttpClient()
            doc = self._client.get(url).json()
        else:
            raise _Unavailable(url)
        self._documents[url] = doc
        return doc

    def _load(self, url: str, options: Any = None) -> dict[str, Any]:
        """pyld's document loader."""
        from pyld import jsonld

        try:
            doc = self.document(url)
        except _Unavailable:
            raise jsonld.JsonLdError(
                f"{url}: not a context citypipe ships or the source allows",
                "jsonld.LoadDocumentError",
                code="loading document failed",
            ) from None
        return {"contextUrl": None, "documentUrl": url, "document": doc}

    @property
    def held(self) -> int:
        """The distinct @contexts processed so far."""
        return len(self._terms)

    def terms(self, context: Any) -> Terms:
        """The names under `context` (an entity's @context, or the one a broker gave in its
        Link header; None: the core context alone)."""
        key = _key(context)
        found = self._terms.get(key)
        if found is None:
            said: list[str] = []
            found = self._terms[key] = Terms(self._effective(context, said), self.options, said)
        return found

    def _effective(self, context: Any, said: list[str]) -> list[Any]:
        """The entries of `context` that can be resolved, then the core context; what was left
        out and why in `said`."""

        def warn(entry: str, why: str) -> None:
            said.append(f"@context {entry!r} {why}: its entities keep the names they give")

        kept: list[Any] = []
        core = CORE_CONTEXT
        for entry in context if isinstance(context, list) else [context]:
            if isinstance(entry, str):
                try:
                    document = self.document(entry)
                except _Unavailable:
                    warn(entry, "is not shipped with citypipe nor allowed by the source")
                    continue
                if is_core(document):  # moved to the end, where the API applies it
                    core = entry
                else:
                    kept.append(entry)
            elif isinstance(entry, dict):
                kept.append(entry)
            elif entry is not None:
                warn(type(entry).__name__, "is neither a URL nor an object")
        kept.append(core)
        from pyld import jsonld

        try:
            jsonld.expand({"@context": kept}, dict(self.options))
        except (jsonld.JsonLdError, RecursionError) as e:
            why = e.code or e.type if isinstance(e, jsonld.JsonLdError) else "nested too deep"
            entries = context if isinstance(context, list) else [context]
            warn(
                ", ".join(e if isinstance(e, str) else "{...}" for e in entries),
                f"cannot be processed ({why})",
            )
            kept = [CORE_CONTEXT]
        return kept


_SHARED_AT_MOST = 64
"""Distinct @contexts the shared `Contexts` keeps (a source sending a new inline @context with
every entity would otherwise grow it for the life of the process); past that, a fresh one."""
_shared: Contexts | None = None


def for_source(option: Any, client: HttpClient | None = None) -> Contexts:
    """The contexts a source with this `contexts:` option may use: its own `Contexts` where
    the option names files or URLs, else the one shared by every such source of the process."""
    global _shared
    policy = ContextPolicy.of(option)
    if policy != ContextPolicy():
        return Contexts(policy, client)
    if _shared is None or _shared.held > _SHARED_AT_MOST:
        _shared = Contexts()
    return _shared


class Terms:
    """Attribute and type names under one processed @context: each expanded to its IRI and
    compacted back, by pyld, once."""

    def __init__(
        self, context: list[Any], options: Mapping[str, Any], warnings: Sequence[str] = ()
    ) -> None:
        self.context = context
        self.warnings = tuple(warnings)
        """What of the entity's @context was left out, and why."""
        self._options = options
        self.names: dict[str, str] = {}
        """The short names resolved so far (`name` resolves the others): a reader looks there
        first, a dict look-up per attribute."""
        self._types: dict[str, str] = {}

    def _round_trip(self, doc: dict[str, Any]) -> dict[str, Any]:
        from pyld import jsonld

        out: dict[str, Any] = jsonld.compact(
            {"@context": self.context, **doc}, {"@context": self.context}, dict(self._options)
        )
        out.pop("@context", None)
        return out

    def name(self, key: str) -> str:
        """The short name of attribute `key` (a term, a compact IRI or an IRI); `key` itself
        where the context drops it."""
        short = self.names.get(key)
        if short is None:
            found = list(self._round_trip({key: "x"})) if not key.startswith("@") else []
            short = self.names[key] = found[0] if len(found) == 1 else key
        return short

    def type_name(self, value: str) -> str:
        """The short name of an entity type or a vocabulary term (vocab-relative)."""
        short = self._types.get(value)
        if short is None:
            found = self._round_trip({"@type": value})
            got = found.get("type", found.get("@type"))
            short = self._types[value] = got if isinstance(got, str) else value
        return short
