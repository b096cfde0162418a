"""What the stores hold, counted in each store: SQL rows, vectors, stored objects."""

from __future__ import annotations

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.context import Stores
from phantoscope.metrics import Holdings


@entry_point
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
        "label_rows": rows["entity_labels"],
        "vectors": sum(stores.vectors.count(pipeline.collection) for pipeline in pipelines),
        "objects": sum(len(stores.objects.keys(bucket)) for bucket in buckets),
    }


@entry_point
def holdings(stores: Stores) -> Holdings:
    """Entities by application and vectors by pipeline, for the metrics gauges."""
    return Holdings(
        entities={
            application.name: stores.meta.count_entities(application.name)
            for application in stores.meta.list_applications()
        },
        vectors={
            pipeline.name: stores.vectors.count(pipeline.collection)
            for pipeline in stores.meta.list_pipelines()
        },
    )
