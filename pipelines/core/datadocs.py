"""GX Data Docs of the validation runs: results as GX JSON under `<docs>/results/`, rendered as
HTML (`<docs>/index.html`, one page per source run); the last DOCS_HISTORY runs of a source are
kept. Concurrent runs take a lock on the folder, so the index is never rebuilt over another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DOCS_HISTORY", "write"]

DOCS_HISTORY = 10
"""Validation results (Data Docs pages) kept per source under <docs>; older runs are pruned."""
SITE = "citypipe"
RESULTS_STORE = "citypipe_docs_results"


@contextlib.contextmanager
def _locked(docs: Path) -> Iterator[None]:
    """An exclusive lock on <docs>, so concurrent runs do not rebuild the index over each other."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(docs / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write(context: Any, result: Any, source: str, docs: Path) -> None:
    """Add `result` (a GX suite validation result of a run of `source`) to the Data Docs under
    `docs`, through `context` (the ephemeral GX Data Context that validated it)."""
    # GX is imported already (it made `context`), with analytics off: citypipe.core.validate
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    docs = Path(docs).resolve()
    docs.mkdir(parents=True, exist_ok=True)
    context.add_store(
        RESULTS_STORE,
        {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs / "results"),
            },
        },
    )
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {
            "validations": {
                "source_store_name": RESULTS_STORE,
                # GX's default filter hides runs named like "profiling"; show every source
                "run_name_filter": {"matches_regex": "^"},
            },
            "profiling": "None",
        },
    }
    if SITE in context.list_data_docs_sites():
        context.update_data_docs_site(SITE, site)
    else:
        context.add_data_docs_site(SITE, site)
    store = context.stores[RESULTS_STORE]
    suite_key = ExpectationSuiteIdentifier(name=result.suite_name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_key,
        run_id=result.meta["run_id"],
        batch_identifier=result.batch_id or source,
    )
    with _locked(docs):
        store.set(key, result)
        runs = sorted(
            (k for k in store.list_keys() if k.run_id.run_name == source),
            key=lambda k: k.run_id.run_time,
        )
        for old in runs[:-DOCS_HISTORY]:
            store.remove_key(old)  # its page goes with it when the index is rebuilt
        context.build_data_docs(site_names=[SITE], resource_identifiers=[key, suite_key])
