"""Great Expectations for the process: imported on first use (it takes seconds), with analytics
and progress bars off, and one ephemeral (in-memory) Data Context that every validation result
and Data Docs build of the process shares: a context costs tens of milliseconds to make, and
nothing of it is written outside the Data Docs folder (citypipe.core.datadocs).
"""

from __future__ import annotations

import os
from functools import cache
from types import SimpleNamespace
from typing import Any

__all__ = ["context", "gx"]


@cache
def gx() -> SimpleNamespace:
    """Great Expectations, imported once; analytics off before the import reads the setting."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations
    import great_expectations.expectations as gxe
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return SimpleNamespace(
        gx=great_expectations,
        expectations=gxe,
        SuiteResult=ExpectationSuiteValidationResult,
        ExpectationResult=ExpectationValidationResult,
        RunIdentifier=RunIdentifier,
        DataContextConfig=DataContextConfig,
        InMemoryStoreBackendDefaults=InMemoryStoreBackendDefaults,
        ProgressBarsConfig=ProgressBarsConfig,
    )


@cache
def context() -> Any:
    """The process's ephemeral Data Context: in-memory stores, no docs site (datadocs adds
    one), no analytics, no progress bars."""
    g = gx()
    config = g.DataContextConfig(
        store_backend_defaults=g.InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=g.ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return g.gx.get_context(mode="ephemeral", project_config=config)
