"""What the stores hold, counted in each store: SQL rows, vectors, stored objects."""

from __future__ import annotations

from phantoscope.engine.context import Stores


def store_counts(stores: Stores) -> dict[str, int]:
    rows = stores.meta.row_counts()
    pipelines = stores.meta.list_pipelines()
    buckets = {application.bucket for application in stores.meta.list_applications()}
    return {
        "operators": rows["operators"],
        "pipelines": rows["pipelines"],
        "applications": rows["applications"],
        "entities": rows["entities"],
        "vector_rows": rows["vectors"],
        "vectors": sum(stores.vectors.count(pipeline.collection) for pipeline in pipelines),
        "objects": sum(len(stores.objects.keys(bucket)) for bucket in buckets),
    }
