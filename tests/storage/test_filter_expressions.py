"""`engine.filters.milvus_expression` against real Milvus: Milvus Lite and a Milvus server.

One collection per backend (id, vector, name VARCHAR, taken_at INT64, attributes JSON) holds
~200 rows with awkward values: quotes, backslashes, `%`, `_`, control characters the
expression escapes, unicode, break-out attempts, and attribute keys whose type differs from
row to row. For each filter, the ids `client.query(filter=milvus_expression(...))` returns
must be exactly those `matches()` selects in Python.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from pymilvus import DataType, MilvusClient

from phantoscope.engine.filters import matches, milvus_expression, parse_filter

BACKENDS = ["lite", "server"]
FIELDS = {"name": "name", "taken_at": "taken_at", "attributes": "attributes"}

TRICKY = [
    'q"uote', "it's", "back\\slash", "trail\\", "\\\"", "pct%x", "pct%", "%", "und_x", "_",
    "undAx", "pctAx", "ünïcødé€", "😀 emoji", "日本語", "a\nb", "tab\there", "cr\rlf",
    '" or 1==1 or "', '") or (1==1', "' or 1==1 or '", '\\" or id >= 0 or \\"', "",
    " leading", "trailing ", "x" * 300, "abc", "abd", "ab", "abc\U0010ffff", "Abc",
]


def make_rows(n: int = 200, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        attributes: dict = {}
        if rng.random() < 0.8:
            attributes["color"] = rng.choice(["red", "green", "blue", *TRICKY[:12]])
        if rng.random() < 0.7:  # numbers, and sometimes a string, under one key
            attributes["n"] = rng.choice([0, 1, 1.0, 2.5, -3, 10**12, 1e-7, "1", "10", "abc"])
        if rng.random() < 0.5:
            attributes["flag"] = rng.random() < 0.5
        if rng.random() < 0.6:
            attributes["tags"] = rng.sample(["cat", "dog", 'q"uote', "pct%", "und_", "ünï"],
                                            rng.randint(0, 3))
        if rng.random() < 0.3:
            attributes["tags"] = rng.choice(["cat", "dog"])  # a string under a list key
        if rng.random() < 0.5:
            attributes["note"] = rng.choice(TRICKY)
        rows.append({
            "id": i,
            "name": TRICKY[i % len(TRICKY)] + ("" if i < len(TRICKY) else f"#{i}"),
            "taken_at": rng.choice([0, 1_600_000_000, 1_700_000_000, 1_704_067_200,
                                    1_704_067_199, 1_720_000_000, -86_400]),
            "attributes": attributes,
        })
    return rows


ROWS = make_rows()

FILTERS: list[dict] = [
    {"name": "plain"},
    {"name": 'q"uote'},
    {"name": "back\\slash"},
    {"name": "trail\\"},
    {"name": "\\\""},
    {"name": "a\nb"},
    {"name": "tab\there"},
    {"name": "cr\rlf"},
    {"name": "ünïcødé€"},
    {"name": "it's"},
    {"name": '" or 1==1 or "'},
    {"name": '") or (1==1'},
    {"name": '\\" or id >= 0 or \\"'},
    {"name": {"ne": '" or 1==1 or "'}},
    {"name": {"in": ['" or 1==1 or "', "it's", "pct%", "nothing"]}},
    {"name": {"prefix": "pct%"}},
    {"name": {"prefix": "%"}},
    {"name": {"prefix": "und_"}},
    {"name": {"prefix": "_"}},
    {"name": {"prefix": "ab"}},
    {"name": {"prefix": "abc"}},
    {"name": {"prefix": "abc\U0010ffff"}},
    {"name": {"prefix": ""}},
    {"name": {"prefix": '" or 1==1 or "'}},
    {"name": {"prefix": "\\"}},
    {"name": {"prefix": "ü"}},
    {"not": {"name": {"prefix": "pct"}}},
    {"name": {"gt": "abc", "lte": "pct"}},
    {"name": {"exists": True}},
    {"name": {"exists": False}},
    {"taken_at": {"gte": "2024-01-01"}},
    {"taken_at": {"lt": "2024-01-01T00:00:00Z"}},
    {"taken_at": {"gt": "2023-12-31T23:59:59.5Z"}},
    {"taken_at": {"lte": "2023-12-31T23:59:59.5Z"}},
    {"taken_at": {"gte": "2023-11-14T22:13:20+00:00", "lt": "2024-07-03T09:46:40Z"}},
    {"taken_at": {"in": ["1970-01-01", "2023-12-31T23:59:59Z"]}},
    {"taken_at": {"ne": "1970-01-01"}},
    {"taken_at": {"lt": "1970-01-01"}},
    {"attributes.color": "red"},
    {"attributes.color": 'q"uote'},
    {"attributes.color": "back\\slash"},
    {"attributes.color": {"prefix": "pct%"}},
    {"attributes.color": {"prefix": "und_"}},
    {"attributes.color": {"ne": "red"}},
    {"attributes.color": {"in": ["red", "blue", "it's"]}},
    {"not": {"attributes.color": {"in": ["red", "blue", "it's"]}}},
    {"attributes.color": {"exists": False}},
    {"attributes.n": 1},
    {"attributes.n": "1"},
    {"attributes.n": {"ne": 1}},
    {"attributes.n": {"gt": 0}},
    {"attributes.n": {"gte": 1, "lt": 1e12}},
    {"attributes.n": {"lte": 1e-7}},
    {"attributes.n": {"gt": "1"}},
    {"attributes.n": {"prefix": "1"}},
    {"not": {"attributes.n": {"gt": 0}}},
    {"not": {"attributes.n": {"prefix": "1"}}},
    {"attributes.n": {"in": [1, "10", -3]}},
    {"attributes.n": {"in": [0, 2.5, 1000000000000]}},
    {"attributes.flag": True},
    {"attributes.flag": {"ne": True}},
    {"not": {"attributes.flag": False}},
    {"attributes.tags": "cat"},
    {"attributes.tags": 'q"uote'},
    {"attributes.tags": {"in": ["dog", "pct%"]}},
    {"attributes.tags": {"ne": "cat"}},
    {"not": {"attributes.tags": {"in": ["dog", "und_"]}}},
    {"attributes.tags": {"prefix": "c"}},
    {"attributes.tags": {"exists": True}},
    {"attributes.note": '" or 1==1 or "'},
    {"attributes.note": {"prefix": "\\"}},
    {"attributes.note": {"gte": "a", "lt": "b"}},
    {"attributes.missing": {"exists": True}},
    {"attributes.missing": {"ne": "x"}},
    {"not": {"attributes.missing": "x"}},
    {"or": [{"attributes.color": "red"}, {"attributes.n": {"gt": 2}}]},
    {"or": [{"attributes.color": "red"}, {"not": {"attributes.n": {"gt": 2}}}]},
    {"not": {"or": [{"attributes.color": "red"}, {"attributes.tags": "cat"}]}},
    {"not": {"attributes.color": "red", "attributes.tags": "cat"}},
    {"not": {"not": {"attributes.color": "red"}}},
    {"name": {"prefix": "pct"}, "attributes.flag": True,
     "or": [{"taken_at": {"gte": "2024-01-01"}}, {"attributes.tags": {"exists": False}}]},
    {"not": {"or": [{"not": {"attributes.n": {"lt": 2}}}, {"attributes.color": {"ne": "red"}}]}},
]


def expected_ids(filter_json: dict) -> list[int]:
    parsed = parse_filter(filter_json)
    return sorted(row["id"] for row in ROWS if matches(parsed, row))


@pytest.fixture(scope="module", params=BACKENDS)
def collection(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[MilvusClient, str, str]]:
    if request.param == "lite":
        uri = str(tmp_path_factory.mktemp("filters") / "filters.db")
    else:
        uri = request.getfixturevalue("milvus_server_uri")
    client = MilvusClient(uri)
    name = f"filters_{uuid.uuid4().hex[:12]}"
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("name", DataType.VARCHAR, max_length=1024)
    schema.add_field("taken_at", DataType.INT64)
    schema.add_field("attributes", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{**row, "vector": [1.0, float(row["id"])]} for row in ROWS])
    client.load_collection(name)
    yield client, name, request.param
    client.drop_collection(name)
    client.close()


def query_ids(client: MilvusClient, name: str, expression: str) -> list[int]:
    rows = client.query(name, filter=expression, output_fields=["id"], limit=16384,
                        consistency_level="Strong")
    return sorted(row["id"] for row in rows)


def test_every_row_is_stored_as_written(collection: tuple[MilvusClient, str, str]) -> None:
    client, name, _ = collection
    got = client.query(name, filter="id >= 0", output_fields=["id", "name", "attributes"],
                       limit=16384, consistency_level="Strong")
    assert {r["id"]: (r["name"], r["attributes"]) for r in got} == {
        r["id"]: (r["name"], r["attributes"]) for r in ROWS}


@pytest.mark.parametrize("filter_json", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_milvus_selects_what_matches_selects(collection: tuple[MilvusClient, str, str],
                                             filter_json: dict) -> None:
    client, name, _ = collection
    expression = milvus_expression(parse_filter(filter_json), FIELDS)
    assert query_ids(client, name, expression) == expected_ids(filter_json), expression


def test_the_filters_are_not_trivial() -> None:
    """Most filters select some rows and leave some out, so equality above means something."""
    sizes = [len(expected_ids(f)) for f in FILTERS]
    assert sum(0 < s < len(ROWS) for s in sizes) >= len(FILTERS) * 3 // 4, sizes


@pytest.mark.parametrize("text", [
    '" or 1==1 or "', '") or (1==1', "' or 1==1 or '", '\\" or id >= 0 or \\"', "\\\"",
    "trail\\", "pct%", "%", "_"])
def test_break_out_attempts_match_only_the_literal_value(
        collection: tuple[MilvusClient, str, str], text: str) -> None:
    client, name, _ = collection
    literal = sorted(r["id"] for r in ROWS if r["name"] == text)
    assert len(literal) == 1
    expression = milvus_expression(parse_filter({"name": text}), FIELDS)
    assert query_ids(client, name, expression) == literal
    note = sorted(r["id"] for r in ROWS if r["attributes"].get("note") == text)
    expression = milvus_expression(parse_filter({"attributes.note": text}), FIELDS)
    assert query_ids(client, name, expression) == note


def test_a_thousand_values_in_a_json_in(collection: tuple[MilvusClient, str, str]) -> None:
    client, name, _ = collection
    values: list = [f"v{i}" for i in range(997)] + ["red", 2.5, "cat"]
    for key in ("attributes.color", "attributes.n", "attributes.tags"):
        filter_json = {key: {"in": values}}
        expression = milvus_expression(parse_filter(filter_json), FIELDS)
        assert query_ids(client, name, expression) == expected_ids(filter_json)


def test_nesting_eight_levels_deep(collection: tuple[MilvusClient, str, str]) -> None:
    client, name, _ = collection
    filter_json: dict = {"attributes.color": "red"}
    for level in range(7):
        filter_json = {"not": filter_json} if level % 2 else {"or": [filter_json,
                                                                     {"name": "nothing"}]}
    expression = milvus_expression(parse_filter(filter_json), FIELDS)
    assert query_ids(client, name, expression) == expected_ids(filter_json)


def test_lite_compares_booleans_as_numbers_the_server_does_not(
        collection: tuple[MilvusClient, str, str]) -> None:
    """The one known difference (engine/filters.py): a key holding booleans in some rows and
    1/0 in others. `matches` and the server keep them apart; Lite takes true == 1."""
    client, _, backend = collection
    name = f"mixed_{uuid.uuid4().hex[:12]}"
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("attributes", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    try:
        rows = [{"id": 1, "attributes": {"v": True}}, {"id": 2, "attributes": {"v": 1}},
                {"id": 3, "attributes": {"v": 0}}, {"id": 4, "attributes": {"v": False}}]
        client.insert(name, [{**r, "vector": [0.0, 0.0]} for r in rows])
        client.load_collection(name)
        parsed = parse_filter({"attributes.v": True})
        assert [r["id"] for r in rows if matches(parsed, r)] == [1]
        got = query_ids(client, name, milvus_expression(parsed, {"attributes": "attributes"}))
        assert got == ([1, 2] if backend == "lite" else [1])
    finally:
        client.drop_collection(name)


def test_a_path_that_is_not_mapped_cannot_be_filtered() -> None:
    with pytest.raises(Exception, match="camera cannot be filtered here"):
        milvus_expression(parse_filter({"camera": "x"}), FIELDS)
