"""An upload reads the catalog once, through the plan cache searches use: one query while
the catalog is unchanged, and a change seen at once."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import event

from phantoscope.engine.catalog_cache import CatalogCache
from phantoscope.engine.entities import plan_upload
from phantoscope.engine.search import plan_search
from phantoscope.storage.meta import (
    ApplicationRow,
    FieldRow,
    MetaStore,
    OperatorRow,
    PipelineRow,
    endpoint_rows,
)


def test_an_upload_plan_costs_one_query_and_is_the_search_plan(tmp_path):
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    stores = SimpleNamespace(meta=meta, plans=CatalogCache())
    meta.add(OperatorRow(name="enc", backend="test", type="encoder", input="image",
                         output="vector", metric_type="IP", dimension=3,
                         endpoint_rows=endpoint_rows(["op:1"])), "adding an operator")
    meta.add(PipelineRow(name="pipe", input="image", output="vector", encoder="enc",
                         dimension=3, metric_type="IP", index_file_size=1024,
                         collection="c_pipe"), "adding a pipeline")
    meta.add(ApplicationRow(name="shop", bucket="shop", fields=[
        FieldRow(name="image", position=0, type="object", pipeline="pipe"),
        FieldRow(name="note", position=1, type="string", value="x")]), "adding an application")
    searched = plan_search(stores, "shop", None)
    sent: list[str] = []
    event.listen(meta.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: sent.append(statement))
    plan = plan_upload(stores, "shop")
    assert len(sent) == 1 and "catalog_version" in sent[0]
    assert plan.field(None) is searched and plan.field("image").encoder.endpoints == ["op:1"]

    meta.set_operator_endpoints("enc", ["op:1", "op:2"])
    assert plan_upload(stores, "shop").field(None).encoder.endpoints == ["op:1", "op:2"]
    meta.close()
