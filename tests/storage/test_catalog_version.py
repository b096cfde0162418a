"""The catalog version: raised by every transaction that changes operators, pipelines or
applications, and by nothing else; on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from phantoscope.storage.meta import (
    ApplicationRow,
    CatalogVersionRow,
    EntityRow,
    FieldRow,
    MetaStore,
    OperatorRow,
    PipelineRow,
    catalog_version,
    endpoint_rows,
)


def version(meta: MetaStore) -> int:
    with meta.session("reading the catalog version") as session:
        return catalog_version(session)


def test_every_catalog_change_raises_the_version_and_nothing_else_does(database):
    _, url = database
    meta = MetaStore(url)
    operator = OperatorRow(name="enc", backend="test", type="encoder", input="image",
                           output="vector", metric_type="IP", dimension=3,
                           endpoint_rows=endpoint_rows(["a:1"]))
    pipeline = PipelineRow(name="pipe", input="image", output="vector", encoder="enc",
                           dimension=3, metric_type="IP", index_file_size=1024,
                           collection="c_pipe")
    application = ApplicationRow(name="shop", bucket="shop", fields=[
        FieldRow(name="image", position=0, type="object", pipeline="pipe")])
    entity = EntityRow(id=7, application="shop", field="image", object_key="k",
                       content_type="image/png", sha256="0" * 64, size=10)
    steps = [  # (what, how, whether it changes the catalog)
        ("add an operator", lambda: meta.add(operator, "adding"), True),
        ("replace its endpoints", lambda: meta.set_operator_endpoints("enc", ["b:2"]), True),
        ("add a pipeline", lambda: meta.add(pipeline, "adding"), True),
        ("add an application", lambda: meta.add(application, "adding"), True),
        ("add an entity", lambda: meta.add_entities([entity]), False),
        ("delete the entity", lambda: meta.delete_entity(7), False),
        ("delete the application", lambda: meta.delete_application("shop"), True),
        ("delete the pipeline", lambda: meta.delete_pipeline("pipe"), True),
        ("delete the operator", lambda: meta.delete_operator("enc"), True),
    ]
    try:
        before = version(meta)
        for what, change, changes_catalog in steps:
            change()
            after = version(meta)
            assert (after > before) if changes_catalog else (after == before), what
            meta.list_applications(), meta.get_pipeline("pipe"), meta.list_operators()
            assert version(meta) == after, f"reading after: {what}"
            before = after
    finally:
        meta.close()


def test_the_version_row_is_made_once_and_kept_on_reopening(database):
    _, url = database
    first = MetaStore(url)
    try:
        first.add(ApplicationRow(name="shop", bucket="shop", fields=[]), "adding an application")
        raised = version(first)
        second = MetaStore(url)
        try:
            with second.session("counting") as session:
                assert session.query(CatalogVersionRow).count() == 1
            assert version(second) == raised >= 1
        finally:
            second.close()
    finally:
        first.close()
