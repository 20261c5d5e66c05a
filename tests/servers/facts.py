"""What the test servers serve, as the sample files and MANIFEST.md say: the tests compare the
servers' answers (and later the harvests) against these, never against the servers' output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


@dataclass(frozen=True)
class Layer:
    name: str
    """The feature type (MapServer, as ms:NAME) and the collection id (pygeoapi)."""
    sample: str
    """The file under data/samples both servers read."""
    title: str
    description: str
    keywords: tuple[str, ...]
    count: int
    """Features in the sample (MANIFEST.md)."""
    with_geometry: int
    """Features with a non-empty geometry: all MapServer serves."""
    id_property: str | None
    """The property that identifies a feature; None where the position in the file (0-based)
    is the id."""
    wgs84_bbox: tuple[float, float, float, float]
    """An extent containing every feature, longitude first."""


FONTS = Layer(
    name="fonts",
    sample="barcelona_drinking_fountains.geojson",
    title="Fonts d'aigua de Barcelona",
    description="Inventari de fonts de beure i ornamentals (Ajuntament de Barcelona)",
    keywords=("Barcelona", "fonts", "aigua"),
    count=1988,  # MANIFEST: 1988 public drinking fountains (Points, CRS84)
    with_geometry=1988,
    id_property=None,  # INVENTARI_CODI repeats (01-001 twice)
    wgs84_bbox=(2.08, 41.34, 2.23, 41.47),
)
PARKPLAETZE = Layer(
    name="parkplaetze",
    sample="esslingen_parking_epsg25832.geojson",
    title="Parkplätze Esslingen am Neckar",
    description="Parkflächen der Stadt Esslingen, gespeichert in ETRS89 / UTM 32N",
    keywords=("Esslingen", "Parkplätze", "Stellplätze"),
    count=250,  # MANIFEST: 250 parking-area Polygons, EPSG:25832
    with_geometry=244,  # fid 93, 95-99 are Polygons with no coordinates
    id_property="fid",
    wgs84_bbox=(9.30, 48.73, 9.32, 48.75),
)
LAYERS = (FONTS, PARKPLAETZE)
