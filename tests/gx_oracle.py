"""GX's own execution of the suite's expectations on a pandas frame: what the vectorised
evaluation (citypipe.core.expectations) and the merged run results are held to."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from citypipe.core import gxenv
from citypipe.core.checks import BoundCheck

_assets = itertools.count()


def gx_validate(frame: pd.DataFrame, bound: list[BoundCheck], asset: str = "t") -> list[Any]:
    """GX's results (SUMMARY format) of the expectations of `bound` on `frame`, one GX run."""
    g = gxenv.gx()
    context = gxenv.context()
    try:
        source = context.data_sources.get("oracle")
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas("oracle")
    name = f"{asset}.{next(_assets)}"
    batches = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
    suite = g.gx.ExpectationSuite(
        name=f"oracle-{name}",
        expectations=[
            getattr(g.expectations, cls)(**kwargs, meta={"citypipe_check": b.spec.name})
            for b in bound
            for cls, kwargs in b.expectations()
        ],
    )
    result = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format="SUMMARY"
    )
    return list(result.results)
