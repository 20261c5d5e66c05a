"""Compressed files read as what they hold: Jena's parking gzipped, bzip2ed, xz'ed and zipped
lands as the file itself does; a zip of several files and a compression bomb are refused in one
line, with exit code 2, and nothing of them is left in the temporary folder."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLES, in_source_order

from citypipe.cli import main
from citypipe.connectors import archives
from citypipe.core.ingest import ingest

JENA = SAMPLES / "jena_parking.geojson"


def _zipped(path: Path, *members: tuple[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


@pytest.fixture(autouse=True)
def _own_temporary_folder(tmp_path, monkeypatch):
    """Unpacked copies go to this test's folder: another test unpacking at the same time (in
    another worker) does not touch what this one counts."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("citypipe-unpacked-*")}


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
def test_a_compressed_file_lands_as_the_file_does(tmp_path, lake, read_lake, kind):
    data = JENA.read_bytes()
    packed = tmp_path / f"jena.geojson.{kind}"
    if kind == "zip":  # with a macOS resource fork beside it, as Finder zips
        _zipped(packed, ("parking/jena.geojson", data), ("__MACOSX/._jena.geojson", b"\0"))
    else:
        packed.write_bytes({"gz": gzip, "bz2": bz2, "xz": lzma}[kind].compress(data))
    before = _leftovers()
    plain = ingest(JENA, "plain", lake)
    report = ingest(packed, "packed", lake)
    assert (report.records, report.features, report.rejects) == (103, 103, 0) == (
        plain.records, plain.features, plain.rejects
    )  # fmt: skip
    assert report.path == str(packed)
    geometry = [in_source_order(read_lake(s)).column("geometry") for s in ("plain", "packed")]
    assert geometry[0].equals(geometry[1])
    assert _leftovers() == before


def test_a_zip_of_several_files_is_refused_naming_them(tmp_path, capsys):
    two = _zipped(tmp_path / "two.zip", ("a.geojson", JENA.read_bytes()), ("b.geojson", b"{}"))
    code = main(["ingest", str(two), "--source", "two", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "a zip archive of 2 files (a.geojson, b.geojson)" in err[0]


def test_a_compression_bomb_is_refused_before_it_fills_the_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(archives, "_ALLOWANCE", 0)  # a small bomb: the bound without its margin
    bomb = tmp_path / "bomb.geojson.gz"
    bomb.write_bytes(gzip.compress(b" " * (20 << 20)))  # 20 MB of blanks in about 20 kB
    before = _leftovers()
    code = main(["ingest", str(bomb), "--source", "bomb", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert code == 2 and "unpacks to more than 200 times its size" in err
    assert _leftovers() == before
