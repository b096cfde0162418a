"""Descriptor rows: made for each upload, and made afterwards for entities stored before
revision 0005 (from their stored images), the first time an application's duplicates are
asked for."""

from __future__ import annotations

import logging

from phantoscope.duplicates.descriptor import ImageDescriptor, describe
from phantoscope.engine.context import Stores
from phantoscope.engine.model import Application
from phantoscope.imaging.codec import BadImageError
from phantoscope.imaging.phash import to_signed
from phantoscope.storage.duplicate_records import DuplicateRecords
from phantoscope.storage.duplicate_rows import DescriptorRow
from phantoscope.storage.objects import ObjectNotFoundError

log = logging.getLogger(__name__)
BATCH = 100  # entities described, then committed, at a time


def descriptor_row(entity: int, application: str, descriptor: ImageDescriptor) -> DescriptorRow:
    hashes = {f"hash_{turn}": to_signed(value)
              for turn, value in enumerate(descriptor.orientation_hashes)}
    return DescriptorRow(entity_id=entity, application=application, sha256=descriptor.sha256,
                         thumbnail=descriptor.thumbnail, width=descriptor.width,
                         height=descriptor.height, format=descriptor.format[:16],
                         quality=descriptor.quality, size=descriptor.size, **hashes)


def backfill(stores: Stores, application: Application) -> int:
    """Describe the application's entities that have no descriptor, from their stored
    images, BATCH at a time, each batch committed: a run cut short goes on from what still
    lacks one. An image gone from the object store or no longer decodable is logged and left
    without one (it is never a duplicate). How many were described."""
    records = DuplicateRecords(stores.meta)
    after, described = 0, 0
    while missing := records.missing_descriptors(application.name, after, BATCH):
        rows = []
        for entity, key in missing:
            try:
                data, _ = stores.objects.get(application.bucket, key)
                rows.append(descriptor_row(entity, application.name, describe(
                    data, max_pixels=stores.limits.max_pixels)))
            except (ObjectNotFoundError, BadImageError) as exc:
                log.warning("entity %s of %r has no usable image to describe: %s", entity,
                            application.name, exc)
        described += records.add_descriptors(rows)
        after = missing[-1][0]
    if described:
        log.info("described %d entities of %r stored before duplicate detection", described,
                 application.name)
    return described
