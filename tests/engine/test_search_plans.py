"""Search plans kept between searches: one query a search while the catalog is unchanged,
and every change, made by this process or another sharing the database, seen at once."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from phantoscope.engine.catalog_cache import CatalogCache
from phantoscope.engine.errors import NotFoundError
from phantoscope.engine.search import plan_search
from phantoscope.storage.meta import (
    ApplicationRow,
    FieldRow,
    MetaStore,
    OperatorRow,
    PipelineRow,
    endpoint_rows,
)


def replica(url: str) -> SimpleNamespace:
    """What `plan_search` uses of an API replica's stores: its own metadata store and
    plan cache on the shared database."""
    return SimpleNamespace(meta=MetaStore(url), plans=CatalogCache())


@pytest.fixture
def replicas(tmp_path) -> Iterator[tuple[SimpleNamespace, SimpleNamespace]]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    a, b = replica(url), replica(url)
    yield a, b
    a.meta.close()
    b.meta.close()


def add_encoder(meta: MetaStore, name: str, endpoints: list[str]) -> None:
    meta.add(OperatorRow(name=name, backend="test", type="encoder", input="image",
                         output="vector", metric_type="IP", dimension=3,
                         endpoint_rows=endpoint_rows(endpoints)), "adding an operator")


def add_pipeline(meta: MetaStore, name: str, encoder: str) -> None:
    meta.add(PipelineRow(name=name, input="image", output="vector", encoder=encoder,
                         dimension=3, metric_type="IP", index_file_size=1024,
                         collection=f"c_{name}"), "adding a pipeline")


def add_application(meta: MetaStore, name: str, pipeline: str) -> None:
    meta.add(ApplicationRow(name=name, bucket=name, fields=[
        FieldRow(name="image", position=0, type="object", pipeline=pipeline)]),
        "adding an application")


def statements_of(meta: MetaStore) -> list[str]:
    """The SQL statements ``meta`` sends from now on (a list that fills as they run)."""
    sent: list[str] = []
    event.listen(meta.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: sent.append(statement))
    return sent


def test_an_unchanged_catalog_costs_one_query_a_search(replicas):
    a, b = replicas
    add_encoder(b.meta, "enc", ["op:1"])
    add_pipeline(b.meta, "pipe", "enc")
    add_application(b.meta, "shop", "pipe")
    first = plan_search(a, "shop", None)
    sent = statements_of(a.meta)
    again = plan_search(a, "shop", None)
    assert again is first
    assert len(sent) == 1 and "catalog_version" in sent[0]
    assert plan_search(a, "shop", "image").pipeline.name == "pipe"  # another key: read


def test_changes_made_by_another_replica_are_seen_at_once(replicas):
    a, b = replicas
    add_encoder(b.meta, "enc", ["op:1"])
    add_encoder(b.meta, "enc2", ["op2:1"])
    add_pipeline(b.meta, "pipe", "enc")
    add_pipeline(b.meta, "pipe2", "enc2")
    add_application(b.meta, "shop", "pipe")
    assert plan_search(a, "shop", None).encoder.endpoints == ["op:1"]

    b.meta.set_operator_endpoints("enc", ["op:1", "op:2"])
    assert plan_search(a, "shop", None).encoder.endpoints == ["op:1", "op:2"]

    b.meta.delete_application("shop")
    with pytest.raises(NotFoundError):
        plan_search(a, "shop", None)

    add_application(b.meta, "shop", "pipe2")  # the same name on another pipeline
    plan = plan_search(a, "shop", None)
    assert (plan.pipeline.name, plan.encoder.name) == ("pipe2", "enc2")
    assert plan.encoder.endpoints == ["op2:1"]


def test_the_cache_holds_one_version_and_answers_only_at_it():
    cache: CatalogCache[str] = CatalogCache()
    cache.put(2, "shop", "read at 2")
    assert cache.get(2, "shop") == "read at 2"
    assert cache.get(3, "shop") is None and cache.get(1, "shop") is None
    cache.put(3, "other", "read at 3")  # a newer catalog: what was read before goes
    assert cache.get(3, "shop") is None and cache.get(3, "other") == "read at 3"
    cache.put(1, "shop", "read at 1")  # a restored database, or a slow reader: the same
    assert cache.get(3, "other") is None and cache.get(1, "shop") == "read at 1"
