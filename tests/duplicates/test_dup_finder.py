"""Finding pairs among stored images: the hash index against brute force, one new image
against what is stored, and all pairs at once, on real photos' descriptors."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from phantoscope.duplicate_set import COPY_EDITS
from phantoscope.duplicates.decision import similar_min_cosine
from phantoscope.duplicates.descriptor import ImageDescriptor, describe
from phantoscope.duplicates.finder import HashIndex, check_new, find_pairs, pairs_of_new
from phantoscope.imaging.phash import hamming
from phantoscope.photoset import sample_photo


def test_near_pairs_are_the_brute_force_pairs_each_once():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    flips = rng.integers(0, 64, size=(40, 6))
    # 40 random hashes and 40 more a few bits off each: both near and far pairs
    near = np.array([int(value) ^ sum(1 << int(bit) for bit in bits[: 1 + index % 6])
                     for index, (value, bits) in enumerate(zip(base, flips, strict=True))],
                    dtype=np.uint64)
    hashes = np.concatenate([base, near])
    index = HashIndex()
    ids = list(range(100, 100 + len(hashes)))
    index.add(ids, np.repeat(hashes[:, None], 8, axis=1))  # one orientation: plain distance
    found = sorted(index.near_pairs(max_bits=4))
    expected = sorted(
        (ids[i], ids[j], hamming(int(hashes[i]), int(hashes[j])))
        for i in range(len(hashes)) for j in range(i + 1, len(hashes))
        if hamming(int(hashes[i]), int(hashes[j])) <= 4
    )
    assert found == expected and len(expected) >= 30
    index.remove([ids[0], ids[40]])
    assert all(ids[0] not in pair[:2] and ids[40] not in pair[:2]
               for pair in index.near_pairs(max_bits=4))
    assert len(index) == len(hashes) - 2


def test_near_pairs_of_some_ids_are_the_brute_force_pairs_holding_them():
    rng = np.random.default_rng(11)
    hashes = rng.integers(0, 2**63, size=(60, 8), dtype=np.uint64)
    hashes[30:] = hashes[:30] ^ np.uint64(0b111)  # each of the last 30 three bits off one
    index = HashIndex()
    ids = list(range(500, 560))
    index.add(ids, hashes)
    some = [ids[3], ids[33], ids[40], ids[41]]
    found = sorted(index.near_pairs_of(some, max_bits=3))
    expected = sorted(
        (ids[i], ids[j]) for i in range(60) if ids[i] in some for j in range(60)
        if i != j and min(hamming(int(hashes[i, which]), int(hashes[j, 0]))
                          for which in range(8)) <= 3)
    assert found == expected
    assert {(ids[3], ids[33]), (ids[33], ids[3]), (ids[40], ids[10])} <= set(found)


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stored() -> dict[int, ImageDescriptor]:
    """Four stored images: coffee, chelsea, rocket, and the coffee resized."""
    coffee = sample_photo("coffee")
    return {
        1: describe(encoded(coffee)),
        2: describe(encoded(sample_photo("chelsea"))),
        3: describe(encoded(sample_photo("rocket"))),
        4: describe(COPY_EDITS["resized-50"](coffee).data),
    }


def index_of(stored: dict[int, ImageDescriptor]) -> HashIndex:
    index = HashIndex()
    index.add(list(stored), np.array([item.orientation_hashes for item in stored.values()],
                                     dtype=np.uint64))
    return index


def reader(stored: dict[int, ImageDescriptor]):
    asked: list[list[int]] = []

    def thumbnails(ids):
        asked.append(list(ids))
        return np.stack([stored[entity].pixels for entity in ids])

    return thumbnails, asked


def test_a_new_turned_copy_is_found_by_its_hash_alone(stored):
    thumbnails, asked = reader(stored)
    new = describe(COPY_EDITS["turned-90"](sample_photo("coffee")).data)
    pairs = check_new(index_of(stored), new.orientation_hashes, new.pixels, [], thumbnails)
    assert sorted((pair.second, pair.copy) for pair in pairs) == [(1, True), (4, True)]
    assert all(pair.first == -1 and np.isnan(pair.cosine) for pair in pairs)
    assert sorted(entity for ids in asked for entity in ids) == [1, 4]  # only candidates read


def test_a_new_image_under_its_own_id_pairs_as_find_pairs_pairs_it(stored):
    """Found on upload or in a full pass, a pair has the same order and figures."""
    thumbnails, _ = reader(stored)
    new = describe(COPY_EDITS["jpeg-50"](sample_photo("coffee")).data)
    pairs = check_new(index_of(stored), new.orientation_hashes, new.pixels, [], thumbnails,
                      new_id=3)  # between the stored ids 1 and 4
    assert sorted((pair.first, pair.second) for pair in pairs) == [(1, 3), (3, 4)]
    everything = {**stored, 3: new}
    index = index_of(everything)
    full, _ = reader(everything)
    at_once = {(pair.first, pair.second): pair for pair in find_pairs(
        index, list(everything), lambda ids: [[] for _ in ids], full) if pair.copy}
    for pair in pairs:  # NaN cosines (no neighbours given) count as equal
        np.testing.assert_equal(dataclasses.astuple(at_once[(pair.first, pair.second)]),
                                dataclasses.astuple(pair))


def test_a_new_image_near_by_encoder_only_is_similar_not_a_copy(stored):
    thumbnails, _ = reader(stored)
    new = describe(encoded(sample_photo("motorcycle_right")))
    pairs = check_new(index_of(stored), new.orientation_hashes, new.pixels,
                      [(3, 0.65), (2, 0.95)], thumbnails)
    by_id = {pair.second: pair for pair in pairs}
    assert set(by_id) == {2, 3}
    assert by_id[3].similar and not by_id[3].copy and np.isnan(by_id[3].overlap)  # 0.65
    assert by_id[2].similar and not by_id[2].copy and by_id[2].residual > 0  # aligned: no


def test_find_pairs_judges_hash_and_neighbour_candidates_once(stored):
    thumbnails, _ = reader(stored)
    vectors = {1: [1.0, 0.0], 2: [0.0, 1.0], 3: [0.6, 0.8], 4: [0.99, 0.141]}

    def neighbours(ids):
        return [[(other, float(np.dot(vectors[entity], vectors[other])))
                 for other in vectors] for entity in ids]

    pairs = find_pairs(index_of(stored), list(stored), neighbours, thumbnails)
    keys = [(pair.first, pair.second) for pair in pairs]
    assert len(keys) == len(set(keys))
    by_key = {key: pair for key, pair in zip(keys, pairs, strict=True)}
    assert by_key[(1, 4)].copy and by_key[(1, 4)].cosine == pytest.approx(0.99, abs=0.001)
    assert [key for key, pair in by_key.items() if pair.copy] == [(1, 4)]
    assert by_key[(2, 3)].similar and not by_key[(2, 3)].copy  # cosine 0.8: aligned, no copy


def test_the_similar_cosine_is_the_encoders(stored):
    assert similar_min_cosine("efficientnet-lite0-encoder") == 0.60
    assert similar_min_cosine("efficientnet-lite0-encoder-int8") == 0.60
    assert similar_min_cosine("mobilenet-v2-encoder") == 0.70
    assert similar_min_cosine("my-own-encoder") == 0.70  # not measured: the strictest
    thumbnails, _ = reader(stored)
    new = describe(encoded(sample_photo("motorcycle_right")))
    for encoder, similar in (("efficientnet-lite0-encoder", True),
                             ("mobilenet-v2-encoder", False)):
        pairs = check_new(index_of(stored), new.orientation_hashes, new.pixels, [(3, 0.65)],
                          thumbnails, min_cosine=similar_min_cosine(encoder))
        assert [pair.similar for pair in pairs] == ([True] if similar else []), encoder


def test_pairs_of_new_images_are_what_a_full_pass_adds(stored):
    """Stored images judged, then new ones stored: their pairs with the old and with each
    other, judged together, are the full pass's pairs that the first lacked."""
    new = {
        5: describe(COPY_EDITS["jpeg-50"](sample_photo("coffee")).data),
        6: describe(COPY_EDITS["turned-90"](sample_photo("rocket")).data),
        7: describe(encoded(sample_photo("motorcycle_right"))),
        8: describe(COPY_EDITS["mirrored"](sample_photo("motorcycle_right")).data),
    }
    everything = {**stored, **new}
    vectors = {1: [1.0, 0.0], 2: [0.0, 1.0], 3: [0.6, 0.8], 4: [0.99, 0.141],
               5: [0.98, 0.2], 6: [0.62, 0.78], 7: [0.1, 0.995], 8: [0.12, 0.993]}

    def neighbours(ids):
        return [[(other, float(np.dot(vectors[entity], vectors[other])))
                 for other in vectors] for entity in ids]

    def by_key(pairs):
        return {(pair.first, pair.second): dataclasses.astuple(pair) for pair in pairs}

    thumbnails, _ = reader(everything)
    before = by_key(find_pairs(index_of(stored), list(stored), neighbours, thumbnails))
    full = by_key(find_pairs(index_of(everything), list(everything), neighbours, thumbnails))
    thumbnails, asked = reader(everything)
    added = by_key(pairs_of_new(index_of(everything), list(new), neighbours, thumbnails))
    assert set(added) == set(full) - set(before)
    for key, figures in added.items():
        np.testing.assert_equal(figures, full[key])
    copies = sorted(key for key, figures in added.items() if figures[-2])
    assert copies == [(1, 5), (3, 6), (4, 5), (7, 8)]
    assert len(asked) == 1  # every candidate aligned in one batch
