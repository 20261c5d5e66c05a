"""GX Data Docs of the validation runs: results as GX JSON under `<docs>/results/`, rendered as
HTML (`<docs>/index.html`, one page per source run); the last DOCS_HISTORY runs of a source are
kept. `store` keeps a run's result, `render` builds the pages of the results stored since it
last ran, once per `citypipe run` or `citypipe ingest`. Concurrent runs take a lock on the
folder, so the index is never rebuilt over another.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from datetime import date, time
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citypipe.core import gxenv

__all__ = ["DOCS_HISTORY", "render", "store"]

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


def _view(name: str) -> dict[str, str]:
    """A view of datadocs_views: GX's, its templates compiled once per process."""
    return {"module_name": "citypipe.core.datadocs_views", "class_name": name}


def _site(docs: Path) -> dict[str, Any]:
    """The Data Docs site under `docs`, its validations read from the results store there."""
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": _view("IndexPageView"),
        },
        "site_section_builders": {
            "expectations": {"view": _view("PageView")},
            "validations": {
                "source_store_name": RESULTS_STORE,
                # GX's default filter hides runs named like "profiling"; show every source
                "run_name_filter": {"matches_regex": "^"},
                "view": _view("PageView"),
            },
            "profiling": "None",
        },
    }


def _store_config(docs: Path) -> dict[str, Any]:
    """The results store under <docs>/results."""
    return {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs / "results"),
        },
    }


@cache
def _results_store(docs: Path) -> Any:
    """A results store at <docs>/results of its own, made once per folder: registering one
    with the context (which `render` does, for the site) costs more than storing a result."""
    from great_expectations.data_context.store import ValidationResultsStore

    class ResultsStore(ValidationResultsStore):
        def serialize(self, value: Any) -> str:
            return json.dumps(result_json(value), indent=2, sort_keys=True)

    return ResultsStore(store_backend=_store_config(docs)["store_backend"])


def result_json(result: Any) -> dict[str, Any]:
    """The JSON of a suite validation result as GX's results store writes it, built from the
    result's fields: GX deep-copies the result and passes every expectation's through its
    schemas twice, which cost most of storing a result (tests/test_validate.py compares the
    two, byte for byte)."""
    return {
        "id": result.id,
        "meta": _plain(result.meta),
        "results": [_expectation_json(r) for r in result.results],
        "statistics": _plain(result.statistics),
        "success": result.success,
        "suite_name": result.suite_name,
        "suite_parameters": _plain(result.suite_parameters),
    }


def _expectation_json(r: Any) -> dict[str, Any]:
    config = r.expectation_config
    described = {"description": config.description, "rendered_content": config.rendered_content}
    return {
        "exception_info": _plain(r.exception_info),
        "expectation_config": {
            "id": config.id,
            "kwargs": _plain(config.kwargs),
            "meta": _plain(config.meta),
            "notes": config.notes,
            "severity": config.severity.value,
            "type": config.type,
            **{k: _plain(v) for k, v in described.items() if v is not None},
        },
        "meta": _plain(r.meta),
        "result": _plain(r.result),
        "success": bool(r.success),
    }


def _plain(value: Any) -> Any:
    """`value` as JSON takes it, converted as GX converts it (`convert_to_json_serializable`:
    NaN and pandas' missing values as null, numpy numbers as Python's, dates in ISO 8601)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (date, time)):
        return value.isoformat()
    if hasattr(value, "to_json_dict"):  # a RunIdentifier
        return _plain(value.to_json_dict())
    if isinstance(value, (np.bool_, np.integer)):
        return value.item()
    if isinstance(value, np.floating):
        return float(round(value, sys.float_info.dig))
    if pd.isna(value):
        return None
    raise TypeError(f"not JSON as GX stores it: {type(value).__name__}")


def store(result: Any, source: str, docs: Path) -> None:
    """Keep `result` (a GX suite validation result of a run of `source`) under <docs>/results
    and prune the source's older runs; its page waits for `render`."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    docs = Path(docs).resolve()
    docs.mkdir(parents=True, exist_ok=True)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
        run_id=result.meta["run_id"],
        batch_identifier=result.batch_id or source,
    )
    with _locked(docs):
        results = _results_store(docs)
        results.set(key, result)
        # the source's runs alone (keys: suite, run name, run time, batch), oldest first
        backend = results.store_backend
        runs = sorted(backend.list_keys(prefix=(result.suite_name, source)), key=lambda k: k[2])
        for old in runs[:-DOCS_HISTORY]:
            backend.remove_key(old)  # its page goes with it when the index is rebuilt


def _page(docs: Path, key: Any) -> Path:
    """Where the site puts the page of a validation result: its key's path under validations/."""
    return docs.joinpath("validations", *key.to_tuple()).with_suffix(".html")


def _pointed_at(context: Any, docs: Path) -> Any:
    """The context's results store, it and the site pointed at `docs`: changed only where they
    point elsewhere (each change has GX write its whole configuration out as YAML, which cost
    as much as rendering a page)."""
    store = _store_config(docs)
    held = context.config.stores.get(RESULTS_STORE) or {}
    if (
        held.get("store_backend", {}).get("base_directory")
        != store["store_backend"]["base_directory"]
    ):
        context.add_store(RESULTS_STORE, store)
    site = context.list_data_docs_sites().get(SITE)
    if site is None:
        context.add_data_docs_site(SITE, _site(docs))
    elif site != _site(docs):
        context.update_data_docs_site(SITE, _site(docs))
    return context.stores[RESULTS_STORE]


def render(docs: Path) -> None:
    """Render the Data Docs under `docs`: the index, the suite's page and the pages of the
    results stored since the last rendering (GX's templates compiled once per process:
    datadocs_views); a run of many sources renders once, at its end."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    docs = Path(docs).resolve()
    if not (docs / "results").is_dir():
        return
    context = gxenv.context()
    with _locked(docs):
        keys = _pointed_at(context, docs).list_keys()
        new = [k for k in keys if not _page(docs, k).exists()]
        suites = [ExpectationSuiteIdentifier(name=s.name) for s in context.suites.all()]
        context.build_data_docs(site_names=[SITE], resource_identifiers=[*new, *suites])
