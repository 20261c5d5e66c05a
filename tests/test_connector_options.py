"""A catalog entry's `options:` are checked in one place, for every connector, against the
names the connector declares: a misspelt or foreign option is refused with one line naming
the ones it takes, before anything is read, never ignored."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import SAMPLES

from citypipe.connectors.base import ServiceConnector
from citypipe.connectors.registry import BUILTIN, load
from citypipe.geo.errors import ConfigurationError

URL = "http://127.0.0.1:9/ngsi-ld/v1/entities"  # never asked: constructing fetches nothing


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_connector_refuses_an_option_it_does_not_take(name, tmp_path):
    cls = load(name)
    location = URL if issubclass(cls, ServiceConnector) else tmp_path / "any.file"
    with pytest.raises(ConfigurationError) as refused:
        cls(location, delimter=";")
    said = str(refused.value)
    assert "\n" not in said and "delimter" in said and str(location) in said
    for option in cls.known_options:
        assert option in said
    for option in cls.known_options:  # and takes the ones it declares
        assert "unknown option" not in _refusal(cls, location, option)


def _refusal(cls, location, option: str) -> str:
    try:
        cls(location, **{option: "1"})
    except ConfigurationError as e:  # a value the option refuses, not the option itself
        return str(e)
    return ""


@pytest.mark.parametrize(
    ("sample", "options", "known"),
    [
        ("bielefeld_parking_wkt.csv", {"delimiter": ";", "geomtry": "wkt"}, "delimiter, encoding"),
        ("barcelona_drinking_fountains.geojson", {"layer": "x"}, "encoding"),
    ],
)
def test_a_catalog_entry_with_a_misspelt_option_is_refused_in_one_line(
    tmp_path, sample, options, known
):
    """`citypipe run`: the entry fails with one line naming the option and the known ones; the
    exit code is 2, a refusal."""
    catalog = tmp_path / "catalog.yaml"
    entry = {"path": str(SAMPLES / sample), "options": options, "theme": "parking"}
    catalog.write_text(yaml.safe_dump({"sources": {"s": entry}}))
    run = subprocess.run(
        [sys.executable, "-m", "citypipe.cli", "run", "--lake", str(tmp_path / "lake")],
        capture_output=True, text=True, check=False,
        env={**os.environ, "CITYPIPE_CATALOG": str(catalog)},
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    [line] = [x for x in run.stderr.splitlines() if "unknown option" in x]
    assert next(k for k in options if k not in known) in line and known in line
