"""Shared schema v1 is written once: the Arrow schema and the README are derived from the YAML."""

from __future__ import annotations

import re

import pyarrow as pa
import yaml
from conftest import ROOT

from citypipe import schemas


def test_arrow_schema_follows_the_yaml():
    raw = yaml.safe_load((ROOT / "schemas" / "feature-v1.yaml").read_text())
    arrow = schemas.feature_schema().arrow
    assert arrow.names == [c["name"] for c in raw["columns"]]
    for c in raw["columns"]:
        assert arrow.field(c["name"]).nullable == c.get("nullable", True)
    assert arrow.field("geometry").type == pa.binary()
    assert arrow.field("bbox").type.names == ["xmin", "ymin", "xmax", "ymax"]


def test_theme_vocabulary_is_the_issues():
    assert list(schemas.themes()) == [
        "building",
        "transport",
        "parking",
        "mobility",
        "environment",
        "street_furniture",
        "boundary",
        "cadastre",
        "land_use",
        "vegetation",
        "water",
        "terrain",
        "bridge",
        "tunnel",
        "group",
        "address",
        "other",
    ]
    assert set(schemas.class_themes().values()) <= set(schemas.themes())


def test_readme_table_is_generated_from_the_schema():
    readme = (ROOT / "README.md").read_text()
    table = re.search(
        r"<!-- schema:begin -->\n(.*?)\n<!-- schema:end -->", readme, re.DOTALL
    ).group(1)
    assert table == schemas.feature_schema().markdown()
