"""Compressed files read as what they hold: a gzip, bzip2 or xz stream, or a zip archive of one
file (or of one shapefile's parts), is unpacked to a temporary folder whose file the connector
reads (GDAL's /vsigzip/ and /vsizip/ do the same for its users), removed with the connector.

Portals ship city data so (a municipality's LoD2 tiles as a zip, a GeoJSON export gzipped,
a Shapefile zipped). Unpacking stops at a bound on the ratio of unpacked to packed bytes, as no
real city file comes near it: a crafted archive (a "compression bomb") is refused in one line,
not written until the disk is full. A zip of several files is refused naming them: a source
is one file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from citypipe.geo.errors import DataError

__all__ = ["MAX_RATIO", "Readable", "unpacked"]

MAX_RATIO = 200
"""Unpacked bytes per packed byte at most (beyond a first 64 MiB): CityGML and GeoJSON shrink
10-30x; a compression bomb (zeros, or one record repeated) about a thousand times."""
_ALLOWANCE = 64 << 20
_STREAMS: dict[bytes, Callable[[Path], io.BufferedIOBase]] = {
    b"\x1f\x8b": gzip.GzipFile,
    b"BZh": bz2.BZ2File,
    b"\xfd7zXZ\x00": lzma.LZMAFile,
}
"""Magic numbers of the compressed streams, and their readers."""
_ZIP = b"PK\x03\x04"
_SHAPEFILE_PARTS = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml"}
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Readable:
    """The file a connector reads: the given one, or its content unpacked into `folder`."""

    path: Path
    folder: Path | None = None

    def tie(self, owner: object) -> None:
        """Remove the unpacked copy when `owner` (its connector) goes."""
        if self.folder is not None:
            weakref.finalize(owner, shutil.rmtree, self.folder, True)

    def discard(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def unpacked(path: Path) -> Readable:
    """`path` itself, or where its one file is unpacked to when it is compressed."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError:
        return Readable(path)  # the connector says why it cannot be read
    opener = next((o for m, o in _STREAMS.items() if magic.startswith(m)), None)
    if opener is None and not magic.startswith(_ZIP):
        return Readable(path)
    folder = Path(tempfile.mkdtemp(prefix="citypipe-unpacked-"))
    try:
        if opener is not None:
            with opener(path) as packed:
                target = _copy(path, packed, _place(folder, path) / Path(path.stem).name)
        else:
            target = _one_member(path, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Readable(target, folder)


def _one_member(path: Path, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as archive:
            files = [
                m for m in archive.infolist()
                if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                and not Path(m.filename).name.startswith(".")
            ]  # fmt: skip
            main = _shapefile(files) if len(files) > 1 else files
            if len(main) != 1:
                names = ", ".join(m.filename for m in files[:5]) + (
                    " ..." if len(files) > 5 else ""
                )
                raise DataError(
                    f"{path}: a zip archive of {len(files)} files ({names}): a source is one "
                    "file; unpack the archive and name the file, or a tile glob of its files"
                )
            for member in files:  # the one file, or a shapefile's parts side by side
                with archive.open(member) as packed:
                    copy = _copy(path, packed, _place(folder, path) / Path(member.filename).name)
                if member is main[0]:
                    target = copy
            return target
    except (zipfile.BadZipFile, NotImplementedError) as e:
        raise DataError(f"{path}: a zip archive that cannot be read: {e}") from e


def _place(folder: Path, path: Path) -> Path:
    """Where `path`'s content goes: a folder named after it, so that messages name the
    archive (`roads_zip/roads.shp`); not `roads.zip/`, which GDAL would open as the archive."""
    place = folder / path.name.replace(".", "_")
    place.mkdir(exist_ok=True)
    return place


def _shapefile(files: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The `.shp` of members that are one shapefile's parts (a stem, its .shp and the files
    GDAL reads beside it), else none."""
    stems = {str(Path(m.filename).with_suffix("")) for m in files}
    suffixes = {Path(m.filename).suffix.lower() for m in files}
    if len(stems) != 1 or ".shp" not in suffixes or not suffixes <= _SHAPEFILE_PARTS:
        return []
    return [m for m in files if m.filename.lower().endswith(".shp")]


def _copy(path: Path, packed: IO[bytes] | io.BufferedIOBase, target: Path) -> Path:
    """`packed` unpacked into `target`, within MAX_RATIO of `path`'s size."""
    limit = path.stat().st_size * MAX_RATIO + _ALLOWANCE
    written = 0
    try:
        with open(target, "wb") as out:
            while block := packed.read(_BLOCK):
                written += len(block)
                if written > limit:
                    raise DataError(
                        f"{path}: unpacks to more than {MAX_RATIO} times its size, as no city "
                        "file does (a compression bomb?): refused"
                    )
                out.write(block)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: a compressed file that cannot be unpacked: {e}") from e
    return target
