"""The stores and services one engine instance works with."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from phantoscope.config import ServerSettings
from phantoscope.engine.catalog_cache import CatalogCache
from phantoscope.engine.duplicate_state import DuplicateIndexes
from phantoscope.engine.intake import IntakeLimits
from phantoscope.engine.pipeline import OperatorPool, PipelineRunner
from phantoscope.imaging.fetch import FetchPolicy
from phantoscope.storage.meta import MetaStore
from phantoscope.storage.objects import ObjectStore
from phantoscope.storage.open_stores import open_import_s3, open_object_store, open_vector_store
from phantoscope.storage.s3_objects import S3ObjectStore
from phantoscope.storage.vectors import VectorStore

OBJECT_WRITERS = 8


@dataclass
class Stores:
    meta: MetaStore
    vectors: VectorStore
    objects: ObjectStore
    pool: OperatorPool
    runner: PipelineRunner
    limits: IntakeLimits
    settings: ServerSettings
    # Application plans (engine.catalog) for uploads and searches, kept while the catalog
    # is unchanged.
    plans: CatalogCache[Any] = field(default_factory=CatalogCache)
    # Each application's duplicate pairs (engine.duplicate_index), made on first need.
    duplicates: DuplicateIndexes = field(default_factory=DuplicateIndexes)
    # Object writes of one upload run side by side: each waits on a disk flush or a network.
    object_writers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(OBJECT_WRITERS, "object-writer"))
    # Where import jobs read s3:// sources (PHANTOSCOPE_IMPORT_S3, else an S3 object
    # store); None: nowhere.
    import_s3: S3ObjectStore | None = None

    @classmethod
    def open(cls, settings: ServerSettings) -> Stores:
        settings.home.mkdir(parents=True, exist_ok=True)
        pool = OperatorPool(
            settings.operator_timeout_s, image_bytes=settings.operator_image_bytes,
            thumbnails=settings.operator_thumbnails,
        )
        objects = open_object_store(settings.objects_url)
        return cls(
            meta=MetaStore(settings.meta_url),
            vectors=open_vector_store(
                settings.vectors_uri, timeout_s=settings.storage_timeout_s,
                lite_host=settings.lite_host,
            ),
            objects=objects,
            import_s3=open_import_s3(settings.import_s3, objects),
            pool=pool,
            runner=PipelineRunner(pool),
            limits=IntakeLimits(
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                fetch=FetchPolicy(
                    timeout_s=settings.fetch_timeout_s,
                    max_bytes=settings.max_upload_bytes,
                    allow_private=settings.allow_private_urls,
                ),
            ),
            settings=settings,
        )

    def close(self) -> None:
        self.object_writers.shutdown()
        self.runner.close()
        self.pool.close()
        self.vectors.close()
        self.objects.close()
        if self.import_s3 is not None and self.import_s3 is not self.objects:
            self.import_s3.close()
        self.meta.close()
