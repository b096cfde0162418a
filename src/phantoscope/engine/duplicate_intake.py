"""An upload against what is stored: is each new image a copy of a stored one (or of one
before it in the same upload)? Checked before anything is written, so that
``reject_duplicates`` can refuse a copy; recorded in the application's index once the upload
is stored. An upload that does not check (an import) leaves its images to the next
listing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from phantoscope.duplicates.descriptor import ImageDescriptor, describe
from phantoscope.duplicates.finder import (
    Candidates,
    HashIndex,
    Pair,
    judge,
    new_candidates,
)
from phantoscope.engine.catalog import ApplicationPlan, FieldPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_index import Lookups, caught_up, min_cosine
from phantoscope.engine.duplicate_state import VectorPlace
from phantoscope.engine.intake import ImageInput
from phantoscope.imaging.codec import BadImageError
from phantoscope.imaging.phash import THUMBNAIL
from phantoscope.metrics import ALIGNED_PAIRS, DESCRIBED_IMAGES

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

    @cached_property
    def unit(self) -> np.ndarray | None:
        """Its vector scaled to length 1 (None without a vector), worked out once: each later
        image of the upload takes its cosine with it."""
        return None if self.vector is None else _unit(self.vector)

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
        descriptor = describe(image.data, max_pixels=stores.limits.max_pixels, thumb=thumb,
                              sha256=image.sha256)
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


@dataclass
class _Checking:
    """One image's check under way: its candidates in the order they are aligned, how many
    are, and the pairs judged so far (similar by encoder alone from the start)."""

    candidates: Candidates
    order: list[tuple[int, int]]
    found: list[Pair]
    judged: int = 0

    def next_chunk(self) -> Candidates:
        """The next FIRST_ALIGNED candidates to align; none once all are or a copy is found."""
        if any(pair.copy for pair in self.found):
            return {}
        keys = self.order[self.judged:self.judged + FIRST_ALIGNED]
        self.judged += len(keys)
        return {key: self.candidates[key] for key in keys}

    def answer(self) -> tuple[list[Pair], Candidates]:
        """The pairs found (but of an image with itself) and the candidates left to align."""
        return ([pair for pair in self.found if pair.first != pair.second],
                {key: self.candidates[key] for key in self.order[self.judged:]})


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
        self.pictures: dict[int, np.ndarray] = {}  # the thumbnails of this upload's images

    def _thumbnails(self, ids: Sequence[int]) -> np.ndarray:
        stored = [entity for entity in ids if entity not in self.pictures]
        found = dict(zip(stored, self.lookups.thumbnails(stored), strict=True)) if stored else {}
        return np.stack([self.pictures[entity] if entity in self.pictures else found[entity]
                         for entity in ids])

    def _judge(self, candidates: Candidates) -> list[Pair]:
        ALIGNED_PAIRS.inc(len(candidates))
        return judge(candidates, self._thumbnails, min_cosine=self.cosine)

    def check(self, image: NewImage) -> tuple[list[Pair], Candidates]:
        """The pairs the new image makes with stored and earlier images (its id in each)
        judged so far, and its candidates left to align: candidates are aligned nearest hash
        first, FIRST_ALIGNED at a time, up to the first batch holding a copy."""
        (stored_near,) = self._stored_near([image])
        checking = self._checking(image, stored_near)
        while chunk := checking.next_chunk():
            checking.found += self._judge(chunk)
        return checking.answer()

    def check_all(self, images: Sequence[NewImage]) -> list[tuple[list[Pair], Candidates]]:
        """:meth:`check` then :meth:`accept` of each image in turn, with the same answers,
        but the images' candidates aligned together: FIRST_ALIGNED of each image that has
        found no copy yet, at a time (alignment costs far less a pair in larger batches)."""
        checks = []
        for image, stored_near in zip(images, self._stored_near(images), strict=True):
            checks.append(self._checking(image, stored_near))
            self._remember(image)
        while True:
            chunks = [checking.next_chunk() for checking in checks]
            owner = {key: at for at, chunk in enumerate(chunks) for key in chunk}
            if not owner:
                break
            together = {key: value for chunk in chunks for key, value in chunk.items()}
            for pair in self._judge(together):
                checks[owner[(pair.first, pair.second)]].found.append(pair)
        answers = [checking.answer() for checking in checks]
        for image, (pairs, pending) in zip(images, answers, strict=True):
            self.pairs[image.entity], self.pending[image.entity] = pairs, pending
        return answers

    def _stored_near(self, images: Sequence[NewImage]) -> list[list[tuple[int, float]]]:
        """Each image's stored nearest neighbours, one vector search per collection."""
        near: list[list[tuple[int, float]]] = [[] for _ in images]
        by_place: dict[tuple[str, str], list[int]] = {}
        for at, image in enumerate(images):
            if image.vector is not None and image.place is not None:
                by_place.setdefault((image.place.collection, image.place.metric), []).append(at)
        for (collection, metric), ats in by_place.items():
            matrix = np.stack([images[at].vector for at in ats])
            for at, found in zip(ats, self.lookups.near(collection, metric, matrix),
                                 strict=True):
                near[at] = found
        return near

    def _checking(self, image: NewImage, stored_near: list[tuple[int, float]]) -> _Checking:
        hashes = image.descriptor.orientation_hashes
        earlier_near: list[tuple[int, float]] = []
        if image.vector is not None and image.place is not None:
            earlier_near = [(other.entity, float(image.unit @ other.unit))
                            for other in self.accepted if other.vector is not None
                            and other.field.pipeline.name == image.field.pipeline.name]
        with self.index.lock:
            candidates, found = new_candidates(self.index.hashes, hashes, stored_near,
                                               min_cosine=self.cosine, new_id=image.entity)
        more, similar = new_candidates(self.earlier, hashes, earlier_near,
                                       min_cosine=self.cosine, new_id=image.entity)
        candidates.update(more)
        # an item retried under the id it was stored with is no copy of itself
        candidates = {key: value for key, value in candidates.items() if key[0] != key[1]}
        order = sorted(candidates, key=lambda key: (candidates[key][0],
                                                    -np.nan_to_num(candidates[key][1], nan=-1)))
        self.pictures[image.entity] = image.descriptor.pixels
        return _Checking(candidates, order, found + similar)

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
        self._remember(image)
        self.pairs[image.entity] = pairs
        self.pending[image.entity] = pending

    def _remember(self, image: NewImage) -> None:
        self.earlier.add([image.entity], np.array([image.descriptor.orientation_hashes],
                                                  dtype=np.uint64))
        self.accepted.append(image)

    def record(self, stored: Sequence[int]) -> None:
        """The upload stored these of the accepted images: into the application's index."""
        kept = set(stored)
        with self.index.lock:
            for image in self.accepted:
                if image.entity in kept:
                    self.index.add(image.entity, image.descriptor.orientation_hashes,
                                   image.place, self.pairs[image.entity],
                                   self.pending[image.entity])


def add_unchecked(stores: Stores, plan: ApplicationPlan, images: Sequence[NewImage]) -> None:
    """Stored images whose copies no one looked for: into the application's index, if this
    process has loaded it, to be judged by the next listing (as if another process had
    stored them, :func:`~phantoscope.engine.duplicate_index.caught_up`), and found by the
    uploads checked meanwhile."""
    index = stores.duplicates.of(plan.application.name)
    with index.lock:
        if not index.loaded:  # loading it reads them
            return
        for image in images:
            if image.entity in index.hashes:
                continue
            index.add(image.entity, image.descriptor.orientation_hashes, image.place)
            if index.pairs is not None:
                index.unjudged.add(image.entity)
