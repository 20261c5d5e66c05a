"""GeoPackage, Shapefile and FlatGeobuf files, read through GDAL (pyogrio): vector formats cities
publish beside the open standards, read a batch at a time as Arrow.

GDAL gives each layer's CRS and hands coordinates in the order GIS software uses (longitude
first), whatever the CRS's authority says. A file of several layers names the one to read in
its catalog entry (`options: {layer: NAME}`); `citypipe inspect` lists them.

Text: GDAL decodes a Shapefile's attributes as its .cpg file or its DBF's language driver id
says. Where neither says (GDAL then hands on the bytes as they are), the DBF's text is read in
the encoding its bytes show (connectors/text.py), as citypipe reads a CSV's; the `encoding`
option names it instead. A .prj that is not UTF-8 (ESRI WKT naming a French projection
"Conique_Conforme_Française" in Latin-1), which pyogrio cannot decode, is read in the encoding
its bytes show, GDAL reading the Shapefile through a copy with that .prj in UTF-8.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path

import pyarrow as pa
import shapely

from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.text import detect_encoding
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["OGRConnector"]

BATCH_ROWS = 10_000


@cache
def _gdal_errors() -> tuple[type[Exception], ...]:
    """What GDAL raises for a file it cannot read (cut short, damaged): the source is refused."""
    import pyogrio  # here, not at load: format detection loads this module to sniff

    return (
        OSError,
        UnicodeDecodeError,  # text GDAL hands on undecoded from a damaged file
        pa.ArrowException,
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        pyogrio.errors.FeatureError,
        pyogrio.errors.FieldError,
        pyogrio.errors.GeometryError,
        pyogrio.errors.CRSError,
    )


_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
"""A GeoPackage's SQLite application id, at byte 68 of the file (1.2 and later; 1.0, 1.1)."""
_DBF_SAMPLE = 1 << 20
"""Bytes of a DBF's records its encoding is found from."""


class OGRConnector(FileConnector):
    name = "ogr"
    title = "GDAL vector (GeoPackage, Shapefile, FlatGeobuf)"
    known_options = frozenset({"encoding", "layer"})

    @classmethod
    def sniff(cls, head: bytes) -> float:
        if head.startswith(b"SQLite format 3\x00") and head[68:72] in _GPKG_IDS:
            return 0.95
        if head.startswith(b"fgb\x03fgb"):
            return 0.95
        if head.startswith(b"\x00\x00\x27\x0a") and len(head) >= 100:  # a .shp: file code 9994
            return 0.9
        return 0.0

    @cached_property
    def _layers(self) -> list[str]:
        """The file's layers, listed once for inspect and read."""
        import pyogrio

        try:
            return [str(name) for name, _ in pyogrio.list_layers(self._gdal_path)]
        except _gdal_errors() as e:
            raise self._unreadable(e) from e

    def _layer(self, layers: list[str]) -> str:
        """The layer to read: the one named, else the only one."""
        named = self.options.get("layer")
        if named is not None:
            if str(named) not in layers:
                raise ConfigurationError(f"{self.path}: no layer {named!r} (layers: {layers})")
            return str(named)
        if len(layers) != 1:
            raise DataError(
                f"{self.path}: {len(layers)} layers ({', '.join(layers[:8])}); name the one to "
                "read with --layer NAME, or options: {layer: NAME} in its catalog entry"
            )
        return layers[0]

    @cached_property
    def _encoding(self) -> str | None:
        """The `encoding` option; else, for a Shapefile whose DBF's encoding nothing declares,
        the one its records' bytes show (None for UTF-8 and ASCII, which need no recoding)."""
        if "encoding" in self.options:
            return str(self.options["encoding"])
        dbf = self._siblings.get("dbf")
        if dbf is None or "cpg" in self._siblings:
            return None
        try:
            with open(dbf, "rb") as f:
                header = f.read(32)
                if len(header) < 32 or header[29]:  # a language driver id: GDAL reads it
                    return None
                f.seek(int.from_bytes(header[8:10], "little"))  # past the field descriptors
                records = f.read(_DBF_SAMPLE)
        except OSError:
            return None  # GDAL says what is wrong
        found = detect_encoding(records.rstrip(b"\x1a"))
        return None if found is None or found.startswith("utf-8") else found

    @cached_property
    def _siblings(self) -> dict[str, Path]:
        """A Shapefile's parts by their suffix ("dbf", "prj", ...); none for other formats."""
        if self.path.suffix.lower() != ".shp":
            return {}
        parts = self.path.parent.glob(f"{self.path.stem}.*")
        return {p.suffix.lower()[1:]: p for p in parts if p.stem.lower() == self.path.stem.lower()}

    @cached_property
    def _gdal_path(self) -> Path:
        """The file GDAL opens: this one, or for a Shapefile whose .prj is not UTF-8 a copy (its
        parts linked, the .prj in UTF-8) removed with the connector."""
        prj = self._siblings.get("prj")
        try:
            data = prj.read_bytes() if prj else b""
            data.decode("utf-8")
            return self.path
        except OSError:
            return self.path  # GDAL says what is wrong
        except UnicodeDecodeError:
            text = data.decode(detect_encoding(data, whole=True) or "latin-1", "replace")
        folder = Path(tempfile.mkdtemp(prefix="citypipe-shapefile-"))
        weakref.finalize(self, shutil.rmtree, folder, True)
        for part in self._siblings.values():
            if part != prj:
                (folder / part.name).symlink_to(part.resolve())
        (folder / prj.name).write_text(text, encoding="utf-8")  # type: ignore[union-attr]
        return folder / self.path.name

    def _unreadable(self, error: Exception) -> DataError:
        return DataError(f"{self.path}: GDAL cannot read it: {str(error).strip()}")

    def inspect(self) -> SourceInfo:
        """The layer read, or every layer where the file has several and none is named."""
        layers = self._layers
        several = len(layers) > 1 and self.options.get("layer") is None
        layer = layers[0] if several else self._layer(layers)
        import pyogrio

        try:
            info = pyogrio.read_info(self._gdal_path, layer=layer)
        except _gdal_errors() as e:
            raise self._unreadable(e) from e
        if several:
            return SourceInfo(format=info["driver"], layers=tuple(layers))
        return SourceInfo(
            format=info["driver"],
            crs=info["crs"],
            layers=(layer,),
            count=info["features"] if info["features"] >= 0 else None,
        )

    def read(self) -> Iterator[SourceBatch]:
        layer = self._layer(self._layers)
        try:
            yield from self._batches(layer)
        except _gdal_errors() as e:
            raise self._unreadable(e) from e

    def _batches(self, layer: str) -> Iterator[SourceBatch]:
        import pyogrio

        with pyogrio.open_arrow(
            self._gdal_path,
            layer=layer,
            encoding=self._encoding,
            batch_size=BATCH_ROWS,
            return_fids=True,
            use_pyarrow=True,
        ) as (meta, reader):
            geometry = meta["geometry_name"] or "wkb_geometry"
            fid = meta.get("fid_column") or "OGC_FID"  # return_fids: always there
            for batch in reader:
                rows = batch.drop_columns([geometry, fid]).to_pylist()  # the attributes
                wkb = batch.column(geometry).to_numpy(zero_copy_only=False)
                yield SourceBatch(
                    source_ids=[
                        None if f is None else str(f) for f in batch.column(fid).to_pylist()
                    ],
                    geometries=shapely.from_wkb(wkb, on_invalid="ignore"),
                    properties=rows,
                    records=rows,
                    crs=meta["crs"],
                    axis_order="xy",
                )
