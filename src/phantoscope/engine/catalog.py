"""What an upload into or a search of an application reads of the catalog: the application,
and for each image field its pipeline and that pipeline's operators, kept between requests
while the catalog is unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, joinedload

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.model import Application, Operator, Pipeline
from phantoscope.engine.names import check_name
from phantoscope.engine.registry import not_found, ordered_operators
from phantoscope.engine.rows import application_of, operator_of, pipeline_of
from phantoscope.engine.standby import standby_of
from phantoscope.storage.meta import (
    ApplicationRow,
    PipelineRow,
    catalog_version,
    operators_named,
)


@dataclass(frozen=True)
class FieldPlan:
    """One image field of an application, with what running its pipeline takes."""

    application: Application
    field: str
    pipeline: Pipeline
    processors: tuple[Operator, ...]
    encoder: Operator
    text_encoder: Operator | None = None  # the pipeline's, which embeds words to search by
    # the field's standby pipelines that uploads also embed with (engine.standby), as plans
    standby: tuple[FieldPlan, ...] = ()


@dataclass(frozen=True)
class ApplicationPlan:
    application: Application
    fields: Mapping[str, FieldPlan]  # by image field, in field order

    def field(self, name: str | None) -> FieldPlan:
        """The image field an upload or search means (``None``: the only one)."""
        application = self.application
        if name is None:
            if len(self.fields) != 1:
                raise BadRequestError(
                    "FIELD_REQUIRED",
                    f"application {application.name!r} has image fields "
                    f"{', '.join(self.fields)}: say which one",
                )
            name = next(iter(self.fields))
        if name not in self.fields:
            known = {f.name for f in application.fields}
            reason = "is not an image field" if name in known else "does not exist"
            raise BadRequestError(
                "UNKNOWN_FIELD",
                f"field {name!r} {reason} in application {application.name!r}; image fields: "
                f"{', '.join(self.fields)}",
            )
        return self.fields[name]


def application_plan(stores: Stores, name: str) -> ApplicationPlan:
    """The application's plan: one query when the catalog has not changed since this process
    last read it (its version row); otherwise a few more in the same transaction. API
    replicas sharing the database see each other's changes at once."""
    check_name("application", name)
    with stores.meta.session("reading an application's pipelines") as session:
        version = catalog_version(session)  # first: a plan is never older than its version
        plan = stores.plans.get(version, name)
        if plan is None:
            plan = _read_plan(session, name)
            stores.plans.put(version, name, plan)
    return plan


def _read_plan(session: Session, name: str) -> ApplicationPlan:
    row = session.get(ApplicationRow, name, options=[joinedload(ApplicationRow.fields)])
    if row is None:
        raise not_found("application", name)
    application = application_of(row)
    fields = {}
    for field in application.fields:
        if field.type != "object" or not field.pipeline:
            continue
        standby = tuple(_field_plan(session, application, field.name, entry.pipeline)
                        for entry in standby_of(field.value).values() if entry.embedded)
        fields[field.name] = dataclasses.replace(
            _field_plan(session, application, field.name, field.pipeline), standby=standby)
    return ApplicationPlan(application, fields)


def _field_plan(session: Session, application: Application, field: str,
                pipeline_name: str) -> FieldPlan:
    """``field`` of ``application`` run through ``pipeline_name``."""
    pipeline_row = session.get(PipelineRow, pipeline_name,
                               options=[joinedload(PipelineRow.steps)])
    if pipeline_row is None:
        raise not_found("pipeline", pipeline_name)
    pipeline = pipeline_of(pipeline_row)
    text_encoder = [pipeline.text_encoder] if pipeline.text_encoder else []
    found = {each: operator_of(row) for each, row in operators_named(
        session, [*pipeline.processors, pipeline.encoder, *text_encoder]).items()}
    processors, encoder = ordered_operators(pipeline, found)
    words = None
    if pipeline.text_encoder:
        if pipeline.text_encoder not in found:
            raise not_found("operator", pipeline.text_encoder)
        words = found[pipeline.text_encoder]
    return FieldPlan(application, field, pipeline, tuple(processors), encoder, words)
