"""citypipe: city data from every standard onto one schema, in one GeoParquet lake.

Layers, each importing only those below it (import-linter checks it):

    citypipe.cli             the command line
    citypipe.orchestration   Dagster assets, checks, schedules, sensors; the main job
    citypipe.core            harmonise, validate, write, lake, warehouse, ingest, catalog
    citypipe.connectors      one module per format or service, and their contract
    citypipe.geo             errors, CRS, axis order, WKB, points
    citypipe.schemas         the shared schema (schemas/*.yaml) and what derives from it
"""
