"""An upload against what is stored: is each new image a copy of a stored one (or of one
before it in the same upload)? Checked before anything is written, so that
``reject_duplicates`` can refuse a copy; recorded in the application's index once the upload
is stored."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phantoscope.duplicates.descriptor import ImageDescriptor, describe
from phantoscope.duplicates.finder import (
    Candidates,
    HashIndex,
    Pair,
    judge,
    new_candidates,
    with_picture,
)
from phantoscope.engine.catalog import ApplicationPlan, FieldPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_index import Lookups, caught_up, min_cosine
from phantoscope.engine.duplicate_state import VectorPlace
from phantoscope.engine.intake import ImageInput
from phantoscope.imaging.codec import BadImageError
from phantoscope.imaging.phash import THUMBNAIL
from phantoscope.metrics import DESCRIBED_IMAGES

log = logging.getLogger(__name__)
FIRST_ALIGNED = 4  # candidates an upload aligns at a time, until it finds a copy


@dataclass(frozen=True)
class DuplicateOf:
    """The stored entity an upload copies, and how closely (:func:`copy_score`)."""

    id: int
    score: float


@dataclass(frozen=True)
class NewImage:
    """An image of an upload about to be stored as entity ``entity``."""

    entity: int
    field: FieldPlan
    descriptor: ImageDescriptor
    vector: np.ndarray | None  # its whole-image vector; None for a pipeline with processors
    vector_id: int | None

    @property
    def place(self) -> VectorPlace | None:
        if self.vector_id is None:
            return None
        pipeline = self.field.pipeline
        return VectorPlace(pipeline.collection, pipeline.metric_type, self.vector_id)


def describe_upload(stores: Stores, image: ImageInput, thumbnail: bytes | None = None
                    ) -> ImageDescriptor | None:
    """The image's descriptor, from ``thumbnail`` when its encoder gave one (nothing is
    decoded here then), else from the image decoded here; None (logged) for an image that
    decodes for the encoder but not here, which is then never found a duplicate."""
    thumb = None
    if thumbnail is not None:
        thumb = np.frombuffer(thumbnail, dtype=np.uint8).reshape(THUMBNAIL, THUMBNAIL)
    try:
        descriptor = describe(image.data, max_pixels=stores.limits.max_pixels, thumb=thumb)
    except BadImageError as exc:
        log.warning("an uploaded image could not be described for duplicates: %s", exc)
        return None
    DESCRIBED_IMAGES.labels("api" if thumb is None else "operator").inc()
    return descriptor


def copy_score(pair: Pair) -> float:
    """How alike a copy pair's pictures are once aligned: 1 minus the worst block's residual
    (1.0: the same pixels), to 4 places; for a pair that is only similar, its cosine."""
    if pair.copy:
        return round(float(np.clip(1.0 - pair.worst_block, 0.0, 1.0)), 4)
    return round(float(pair.cosine), 4)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class UploadCheck:
    """The images of one upload checked one after another against the stored ones and the
    ones accepted before them."""

    def __init__(self, stores: Stores, plan: ApplicationPlan, *, at_once: bool = False
                 ) -> None:
        """``at_once``: take in what other processes stored up to now (see
        :func:`caught_up`), as an upload refusing copies must."""
        self.index = caught_up(stores, plan, at_once=at_once)
        self.lookups = Lookups(stores, plan.application.name, self.index)
        self.cosine = min_cosine(plan)
        self.earlier = HashIndex()
        self.accepted: list[NewImage] = []
        self.pairs: dict[int, list[Pair]] = {}
        self.pending: dict[int, Candidates] = {}

    def _thumbnails(self, ids: Sequence[int]) -> np.ndarray:
        mine = {image.entity: image.descriptor.pixels for image in self.accepted}
        stored = [entity for entity in ids if entity not in mine]
        found = dict(zip(stored, self.lookups.thumbnails(stored), strict=True)) if stored else {}
        return np.stack([mine[entity] if entity in mine else found[entity] for entity in ids])

    def check(self, image: NewImage) -> tuple[list[Pair], Candidates]:
        """The pairs the new image makes with stored and earlier images (its id in each)
        judged so far, and its candidates left to align: candidates are aligned nearest hash
        first, FIRST_ALIGNED at a time, up to the first batch holding a copy."""
        hashes = image.descriptor.orientation_hashes
        stored_near: list[tuple[int, float]] = []
        earlier_near: list[tuple[int, float]] = []
        if image.vector is not None and image.place is not None:
            place = image.place
            stored_near = self.lookups.near(place.collection, place.metric,
                                            image.vector[None, :])[0]
            earlier_near = [(other.entity, float(_unit(image.vector) @ _unit(other.vector)))
                            for other in self.accepted if other.vector is not None
                            and other.field.pipeline.name == image.field.pipeline.name]
        with self.index.lock:
            candidates, found = new_candidates(self.index.hashes, hashes, stored_near,
                                               min_cosine=self.cosine, new_id=image.entity)
        more, similar = new_candidates(self.earlier, hashes, earlier_near,
                                       min_cosine=self.cosine, new_id=image.entity)
        candidates.update(more)
        found += similar
        # an item retried under the id it was stored with is no copy of itself
        candidates = {key: value for key, value in candidates.items() if key[0] != key[1]}
        order = sorted(candidates, key=lambda key: (candidates[key][0],
                                                    -np.nan_to_num(candidates[key][1], nan=-1)))
        pictures = with_picture(self._thumbnails, image.entity, image.descriptor.pixels)
        judged = 0
        while judged < len(order) and not any(pair.copy for pair in found):
            chunk = order[judged:judged + FIRST_ALIGNED]
            found += judge({key: candidates[key] for key in chunk}, pictures,
                           min_cosine=self.cosine)
            judged += len(chunk)
        return ([pair for pair in found if pair.first != pair.second],
                {key: candidates[key] for key in order[judged:]})

    def copy_of(self, image: NewImage, pairs: Sequence[Pair]) -> DuplicateOf | None:
        """The entity the image copies most closely (the first stored, on a tie), if any."""
        copies = [(copy_score(pair), pair.first if pair.second == image.entity else pair.second)
                  for pair in pairs if pair.copy]
        if not copies:
            return None
        score, other = max(copies, key=lambda found: (found[0], -found[1]))
        return DuplicateOf(other, score)

    def accept(self, image: NewImage, pairs: list[Pair], pending: Candidates) -> None:
        """The image will be stored: later images of the upload are checked against it."""
        self.earlier.add([image.entity], np.array([image.descriptor.orientation_hashes],
                                                  dtype=np.uint64))
        self.accepted.append(image)
        self.pairs[image.entity] = pairs
        self.pending[image.entity] = pending

    def record(self, stored: Sequence[int]) -> None:
        """The upload stored these of the accepted images: into the application's index."""
        kept = set(stored)
        with self.index.lock:
            for image in self.accepted:
                if image.entity in kept:
                    self.index.add(image.entity, image.descriptor.orientation_hashes,
                                   image.place, self.pairs[image.entity],
                                   self.pending[image.entity])
