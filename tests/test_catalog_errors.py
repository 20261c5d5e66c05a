"""A catalog a user got wrong is refused in one line saying where: PyYAML's messages span
lines (the context, the line quoted, a caret), and text that is not UTF-8 crashed the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citypipe.cli import main
from citypipe.core.catalog import load_catalog
from citypipe.geo.errors import ConfigurationError


@pytest.mark.parametrize(
    "text, says",
    [
        (b"sources: [\n", "line 2, column 1: "),  # the flow sequence never closes
        (b"sources:\n  a:\n    path: x\n   theme: y\n", "line 4, column 4: "),  # indentation
        (b"\tsources: {}\n", "line 1, column 1: "),  # a tab cannot start a token
        (b"sources:\n  a:\n    path: caf\xe9\n", "not UTF-8 text: byte 27"),  # cp1252 e-acute
    ],
)
def test_a_catalog_that_does_not_read_is_one_line_saying_where(tmp_path, text, says):
    path = tmp_path / "catalog.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(path)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_citypipe_run_refuses_it_in_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"sources: [\n")
    monkeypatch.setenv("CITYPIPE_CATALOG", str(path))
    assert main(["run", "--lake", str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: not valid YAML: line 2" in err, err


def test_an_entry_that_is_not_a_mapping_is_refused_alone(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("sources:\n  a: 5\n  b:\n    path: b.csv\n")
    catalog = load_catalog(path)
    assert [s.name for s in catalog.sources] == ["b"]
    assert catalog.refused == (
        ("a", f"{path}: source 'a': expected a mapping of settings (path:, theme: ...), not 5"),
    )


def test_the_dagster_code_location_fails_to_load_a_catalog_that_does_not_read(
    tmp_path, monkeypatch
):
    """The load fails with the catalog's one line, not chained to the YAML parser's error (whose
    traceback Dagster would print too)."""
    from citypipe.orchestration.definitions import defs

    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"sources: [\n")
    monkeypatch.setenv("CITYPIPE_CATALOG", str(path))
    monkeypatch.setenv("CITYPIPE_LAKE", str(tmp_path / "lake"))
    with pytest.raises(ConfigurationError) as caught:
        defs()
    said = str(caught.value)
    assert said.startswith(f"{path}: not valid YAML: line 2") and "\n" not in said
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_dagster_definitions_validate_fails_with_the_one_line(tmp_path):
    """A false green otherwise: a CI validating the code location passed on a broken catalog."""
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"sources: [unclosed\n  - a: {\n")
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "CITYPIPE_CATALOG": str(path), "CITYPIPE_LAKE": str(tmp_path / "lake")}
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [dagster, "definitions", "validate", "-m", "citypipe.orchestration.definitions"],
        check=False, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    ours = [line for line in said.splitlines() if f"{path}: not valid YAML: line 2, " in line]
    assert len(ours) == 1, said
