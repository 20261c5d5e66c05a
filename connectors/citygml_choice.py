"""A complete CityGML object's geometry chosen: its richest LoD, its xlinks resolved.

Once a top-level object and its parts are read (`citygml_objects`), each record keeps the
geometry of its richest LoD (its own, or its thematic surfaces' where those are richer) as
polygon handles of the batch's `GeometryReader`, every xlink resolved inside the document.
"""

from __future__ import annotations

from itertools import chain

from citypipe.connectors import gml
from citypipe.connectors.citygml_records import Record
from citypipe.connectors.gml import GeometryReader, Parts
from citypipe.connectors.gml_xlinks import Ref

__all__ = ["choose"]


def choose(rec: Record, geometry: GeometryReader) -> None:
    """geometry_3d, surfaces and lod of the richest LoD; xlinks resolved by `geometry`."""
    if not (rec.geometries or rec.surfaces or rec.footprint):  # no geometry: nothing to do
        return
    compiled = gml.compiled
    if compiled is not None and compiled.choose_surfaces(rec):  # thematic surfaces, inline
        return
    own, chosen = _richest(rec)
    missing: list[str] = []

    def resolve(refs: list[Ref]) -> list[int]:
        handles, lost = geometry.resolve(refs)
        missing.extend(lost)
        return handles

    inline = all(type(r) is int for _, refs in chosen for r in refs)  # nothing to resolve
    if own is not None:
        rec.polygons = resolve(own.polygons)
        rec.lines, rec.points = own.lines, own.points
    elif inline:
        rec.polygons = list(chain.from_iterable(r for _, r in chosen))  # type: ignore[misc]
    else:
        rec.polygons = resolve(list(chain.from_iterable(r for _, r in chosen)))
    if inline:
        rec.surface_handles = chosen  # type: ignore[assignment]
    else:
        rec.surface_handles = [(t, resolve(refs)) for t, refs in chosen]
    if rec.footprint:
        rec.footprint_handles = resolve(rec.footprint)
    if missing:
        shown = ", ".join(repr(m) for m in sorted(set(missing))[:3])
        rec.errors.append(
            f"dangling xlink: {shown} resolve to no surface of this object or before it in "
            "the document (missing, later, cyclic or not a geometry; xlinks are never fetched)"
        )
    rec.geometries, rec.surfaces, rec.footprint = [], [], []


def _richest(rec: Record) -> tuple[Parts | None, list[tuple[str, list[Ref]]]]:
    """Set the record's lod to the richest it has. Its own geometry of that LoD (None where its
    thematic surfaces are richer, or it has none), and its thematic surfaces of their richest
    LoD as (surface type, polygon handles)."""
    surfaces = rec.surfaces
    surface_lod = max([lod for _, lod, _ in surfaces]) if surfaces else None
    chosen = [(t, refs) for t, lod, refs in surfaces if lod == surface_lod]
    if not rec.geometries:  # thematic surfaces alone (or nothing): the common case
        if surface_lod is not None:
            rec.lod = surface_lod
        return None, chosen
    own = [(rec.lod if lod is None else lod, rank, parts) for lod, rank, parts in rec.geometries]
    best = max(own, key=lambda g: (g[0] or 0, g[1]))
    lods = [lod for lod, _, _ in own if lod is not None] + (
        [surface_lod] if surface_lod is not None else []
    )
    rec.lod = max(lods) if lods else rec.lod
    if surface_lod is None or (best[0] or 0) >= surface_lod:
        return best[2], chosen
    return None, chosen
