"""Operators, pipelines and applications: creating, reading and deleting them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError, NotFoundError
from phantoscope.engine.model import Application, Operator, Pipeline
from phantoscope.engine.names import bucket_name, check_name, collection_name
from phantoscope.engine.picture import Picture
from phantoscope.engine.pipeline import Step, operator_error
from phantoscope.engine.replicas import parse_endpoints
from phantoscope.engine.rows import application_of, operator_of, pipeline_of
from phantoscope.engine.standby import standby_of
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient, OperatorIdentity
from phantoscope.storage.meta import (
    ApplicationRow,
    DuplicateError,
    FieldRow,
    OperatorRow,
    PipelineProcessorRow,
    PipelineRow,
    endpoint_rows,
)
from phantoscope.storage.reindex_store import ReindexStore

METRICS = ("IP", "L2", "COSINE")
TEXT_INPUT = "text"  # an encoder's Identity input when it encodes texts
# Two encoders of one embedding space, to name in messages.
PAIR_EXAMPLE = ("clip-vit-b-32-image-encoder", "clip-vit-b-32-text-encoder")
REGISTER_TIMEOUT_S = 5.0


def _exists(kind: str, name: str) -> ConflictError:
    article = "an" if kind[0] in "aeiou" else "a"
    return ConflictError(
        f"{kind.upper()}_EXISTS", f"{article} {kind} named {name!r} already exists"
    )


def not_found(kind: str, name: str) -> NotFoundError:
    return NotFoundError(f"{kind.upper()}_NOT_FOUND", f"no {kind} named {name!r}")


def _in_use(kind: str, name: str, users_kind: str, users: list[str]) -> ConflictError:
    return ConflictError(
        f"{kind.upper()}_IN_USE",
        f"{kind} {name!r} is used by {users_kind}(s) {', '.join(users)}: delete them first",
    )


# -- operators ---------------------------------------------------------------------------


@entry_point
def get_operator(stores: Stores, name: str) -> Operator:
    row = stores.meta.get_operator(check_name("operator", name))
    if row is None:
        raise not_found("operator", name)
    return operator_of(row)


@entry_point
def list_operators(stores: Stores) -> list[Operator]:
    return [operator_of(row) for row in stores.meta.list_operators()]


def replica_states(stores: Stores, operator: Operator) -> list[dict[str, str]]:
    """Each replica's endpoint and last known state (up, down or unknown)."""
    return stores.pool.states(operator.endpoints)


def _identity(endpoint: str) -> OperatorIdentity:
    with OperatorClient(endpoint, timeout_s=REGISTER_TIMEOUT_S) as client:
        try:
            return client.identity()
        except OperatorCallError as exc:
            raise BadRequestError(
                "OPERATOR_UNREACHABLE",
                f"no operator answers at {endpoint} ({exc.code}: {exc.details}): start the "
                "operator or fix the endpoint",
            ) from None


def _same_operator(endpoints: list[str], identities: list[OperatorIdentity]) -> None:
    """Replicas of one operator must agree on what they produce."""

    def shape(identity: OperatorIdentity) -> tuple[str, int, str]:
        return identity.type, identity.dimension, identity.metric_type.upper()

    for endpoint, identity in zip(endpoints[1:], identities[1:], strict=True):
        if shape(identity) != shape(identities[0]):
            raise BadRequestError(
                "OPERATOR_REPLICAS_DIFFER",
                f"the operators at {endpoints[0]} and {endpoint} are not replicas of one "
                "operator: (type, dimension, metric) "
                f"{shape(identities[0])} and {shape(identity)}",
            )


def endpoint_list(endpoint: str) -> list[str]:
    """The endpoints of ``host:port`` or ``host:port,host:port,...``; INVALID_ENDPOINT if bad."""
    try:
        return parse_endpoints(endpoint)
    except ValueError as exc:
        raise BadRequestError("INVALID_ENDPOINT", str(exc)) from None


@entry_point
def register_operator(stores: Stores, name: str, endpoint: str) -> Operator:
    """Ask the operator at ``endpoint`` who it is and remember it under ``name``.

    ``endpoint`` is ``host:port``, or ``host:port,host:port,...`` for replicas of one
    operator (each is asked; they must agree on type, dimension and metric). The operator
    row and one row per endpoint are written in one transaction.
    """
    check_name("operator", name)
    endpoints = endpoint_list(endpoint)
    if stores.meta.get_operator(name) is not None:
        raise _exists("operator", name)
    identities = [_identity(one) for one in endpoints]
    _same_operator(endpoints, identities)
    identity = identities[0]
    endpoint = ",".join(endpoints)
    if identity.type not in ("encoder", "processor"):
        raise BadRequestError(
            "OPERATOR_INVALID", f"the operator at {endpoint} has unknown type {identity.type!r}"
        )
    if identity.type == "encoder" and (
        identity.dimension <= 0 or identity.metric_type.upper() not in METRICS
    ):
        raise BadRequestError(
            "OPERATOR_INVALID",
            f"the encoder at {endpoint} reports dimension {identity.dimension} and metric "
            f"{identity.metric_type!r}; it needs a positive dimension and one of {METRICS}",
        )
    row = OperatorRow(
        name=name,
        backend=identity.name,
        type=identity.type,
        input=identity.input,
        output=identity.output,
        endpoint_rows=endpoint_rows(endpoints),
        metric_type=identity.metric_type.upper(),
        dimension=identity.dimension,
        labels=identity.labels if identity.type == "encoder" else "",
    )
    try:
        stores.meta.add(row, "registering an operator")
    except DuplicateError:
        raise _exists("operator", name) from None
    return operator_of(row)


@entry_point
def move_operator(stores: Stores, name: str, endpoint: str) -> Operator:
    """Point a registered operator at ``endpoint`` (its replicas, as for registering) and
    record the label vocabulary it now says it gives (an operator registered before labels
    existed, started again by a newer release)."""
    operator = get_operator(stores, name)
    endpoints = endpoint_list(endpoint)
    stores.meta.set_operator_endpoints(name, endpoints)
    identity = _identity(endpoints[0])
    labels = identity.labels if operator.type == "encoder" else ""
    stores.meta.set_operator_labels(name, labels)
    return get_operator(stores, name)


@entry_point
def delete_operator(stores: Stores, name: str) -> Operator:
    operator = get_operator(stores, name)
    users = stores.meta.pipelines_using(name)
    if users:
        raise _in_use("operator", name, "pipeline", users)
    stores.meta.delete_operator(name)
    return operator


@entry_point
def operator_health(stores: Stores, name: str) -> tuple[str, list[dict[str, str]]]:
    """Ask every replica `Healthy` now: the first healthy answer (else the first answer at
    all), and each replica's state; OPERATOR_UNAVAILABLE if none answers."""
    operator = get_operator(stores, name)
    replicas = stores.pool.replicas(operator.endpoints)
    answers = [answer for _, answer in replicas.check(REGISTER_TIMEOUT_S) if answer is not None]
    if not answers:
        failure = OperatorCallError(
            ",".join(operator.endpoints), "Healthy", "UNAVAILABLE", "no replica answers"
        )
        raise operator_error(operator, failure)
    return (HEALTHY if HEALTHY in answers else answers[0]), replicas.states()


# -- pipelines ---------------------------------------------------------------------------


@entry_point
def get_pipeline(stores: Stores, name: str) -> Pipeline:
    row = stores.meta.get_pipeline(check_name("pipeline", name))
    if row is None:
        raise not_found("pipeline", name)
    return pipeline_of(row)


@entry_point
def list_pipelines(stores: Stores) -> list[Pipeline]:
    return [pipeline_of(row) for row in stores.meta.list_pipelines()]


def _operator_of_type(stores: Stores, name: Any, expected: str, role: str) -> Operator:
    if not isinstance(name, str) or not name:
        raise BadRequestError("INVALID_REQUEST", f"{role} must be an operator name")
    operator = get_operator(stores, name)
    if operator.type != expected:
        raise BadRequestError(
            "PIPELINE_INVALID",
            f"operator {name!r} is a {operator.type}, but a pipeline's {role} must be a "
            f"{expected}",
        )
    return operator


def _image_encoder(stores: Stores, name: Any) -> Operator:
    encoder = _operator_of_type(stores, name, "encoder", "encoder")
    if encoder.input == TEXT_INPUT:
        raise BadRequestError(
            "PIPELINE_INVALID",
            f"operator {name!r} encodes texts, but a pipeline's encoder must encode its "
            "images: give an image encoder as `encoder` and this one as `text_encoder` (e.g. "
            f"encoder {PAIR_EXAMPLE[0]} with text_encoder {PAIR_EXAMPLE[1]})",
        )
    return encoder


def _text_encoder(stores: Stores, name: Any, encoder: Operator) -> Operator:
    """The text encoder ``name`` names, checked to share ``encoder``'s embedding space (as far
    as an operator says: its dimension and metric)."""
    if not isinstance(name, str) or not name:
        raise BadRequestError("INVALID_REQUEST", "text_encoder must be an operator name")
    coder = get_operator(stores, name)
    if coder.type != "encoder" or coder.input != TEXT_INPUT:
        what = "a processor" if coder.type != "encoder" else f"an encoder of {coder.input}s"
        raise BadRequestError(
            "PIPELINE_INVALID",
            f"operator {name!r} is {what}, but a pipeline's text_encoder must be an encoder "
            f"of texts (its input {TEXT_INPUT!r}, e.g. {PAIR_EXAMPLE[1]}): register one and "
            "name it, or leave text_encoder out",
        )
    pair = (f"pair encoders of one embedding space, e.g. {PAIR_EXAMPLE[0]} with "
            f"{PAIR_EXAMPLE[1]}")
    if coder.dimension != encoder.dimension:
        raise BadRequestError(
            "TEXT_ENCODER_MISMATCH",
            f"text encoder {name!r} gives {coder.dimension}-d vectors but image encoder "
            f"{encoder.name!r} gives {encoder.dimension}-d: {pair}",
        )
    if coder.metric_type != encoder.metric_type:
        raise BadRequestError(
            "TEXT_ENCODER_MISMATCH",
            f"text encoder {name!r} is compared by {coder.metric_type} but image encoder "
            f"{encoder.name!r} by {encoder.metric_type}: {pair}",
        )
    return coder


def ordered_operators(
    pipeline: Pipeline, found: Mapping[str, Operator]
) -> tuple[list[Operator], Operator]:
    """The pipeline's processors and encoder from operators read by name;
    OPERATOR_NOT_FOUND names the first one missing."""
    for name in (*pipeline.processors, pipeline.encoder):
        if name not in found:
            raise not_found("operator", name)
    return [found[name] for name in pipeline.processors], found[pipeline.encoder]


@entry_point
def create_pipeline(
    stores: Stores,
    name: str,
    *,
    input: str,
    description: str,
    processors: list[str],
    encoder: str,
    index_file_size: int,
    text_encoder: str | None = None,
) -> Pipeline:
    """Processors in order, then ``encoder``; with ``text_encoder``, a text encoder of the
    encoder's embedding space that searches by words embed their words with. Everything is
    checked before anything is written."""
    check_name("pipeline", name)
    if input != "image":
        raise BadRequestError("PIPELINE_INVALID", f"input must be 'image', not {input!r}")
    if stores.meta.get_pipeline(name) is not None:
        raise _exists("pipeline", name)
    for processor in processors:
        _operator_of_type(stores, processor, "processor", "processor")
    coder = _image_encoder(stores, encoder)
    if text_encoder is not None:
        _text_encoder(stores, text_encoder, coder)
    collection = collection_name(name)
    stores.vectors.create_collection(collection, coder.dimension, coder.metric_type)
    row = PipelineRow(
        name=name,
        input=input,
        output=coder.output,
        description=description,
        encoder=encoder,
        dimension=coder.dimension,
        metric_type=coder.metric_type,
        index_file_size=index_file_size,
        collection=collection,
        steps=[PipelineProcessorRow(position=i, operator=p) for i, p in enumerate(processors)],
        text_encoder=text_encoder,
    )
    try:
        stores.meta.add(row, "creating a pipeline")
    except BaseException as exc:
        stores.vectors.drop_collection(collection)
        if isinstance(exc, DuplicateError):
            raise _exists("pipeline", name) from None
        raise
    return pipeline_of(row)


@entry_point
def delete_pipeline(stores: Stores, name: str) -> Pipeline:
    pipeline = get_pipeline(stores, name)
    users = stores.meta.applications_using(name)
    if users:
        raise _in_use("pipeline", name, "application", users)
    standing = sorted({field.application for field in ReindexStore(stores.meta).image_fields()
                       if name in standby_of(field.value)})
    if standing:  # a reindex made, or the switch grace keeps, its vectors there
        raise ConflictError(
            "PIPELINE_IN_USE",
            f"pipeline {name!r} holds vectors of application(s) {', '.join(standing)} (a "
            "reindex with it, or a switch away from it less than PHANTOSCOPE_SWITCH_GRACE_S "
            "ago): cancel the reindex or wait until they are removed")
    stores.meta.delete_pipeline(name)
    stores.vectors.drop_collection(pipeline.collection)
    return pipeline


# -- applications ------------------------------------------------------------------------


@entry_point
def get_application(stores: Stores, name: str) -> Application:
    row = stores.meta.get_application(check_name("application", name))
    if row is None:
        raise not_found("application", name)
    return application_of(row)


@entry_point
def list_applications(stores: Stores) -> list[Application]:
    return [application_of(row) for row in stores.meta.list_applications()]


def _field_rows(stores: Stores, fields: Any) -> list[FieldRow]:
    if not isinstance(fields, Mapping) or not fields:
        raise BadRequestError(
            "INVALID_REQUEST",
            'fields must be an object such as {"image": {"type": "object", "pipeline": "p"}}',
        )
    rows = []
    for position, (field, spec) in enumerate(fields.items()):
        check_name("field", field)
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
            raise BadRequestError(
                "INVALID_REQUEST", f"field {field!r} needs an object with a string `type`"
            )
        if spec["type"] == "object":
            pipeline = spec.get("pipeline")
            if not isinstance(pipeline, str):
                raise BadRequestError(
                    "INVALID_REQUEST", f"image field {field!r} needs a `pipeline` name"
                )
            get_pipeline(stores, pipeline)
            rows.append(FieldRow(name=field, position=position, type="object", pipeline=pipeline))
        else:
            if "value" not in spec:
                raise BadRequestError(
                    "INVALID_REQUEST", f"field {field!r} of type {spec['type']!r} needs a `value`"
                )
            rows.append(
                FieldRow(name=field, position=position, type=spec["type"][:16], value=spec["value"])
            )
    if not any(row.type == "object" for row in rows):
        raise BadRequestError(
            "INVALID_REQUEST", "an application needs at least one field of type 'object'"
        )
    return rows


@entry_point
def create_application(
    stores: Stores, name: str, fields: Any, bucket: str | None
) -> Application:
    check_name("application", name)
    if stores.meta.get_application(name) is not None:
        raise _exists("application", name)
    field_rows = _field_rows(stores, fields)
    bucket = bucket or bucket_name(name)
    try:
        created = not stores.objects.bucket_exists(bucket)
    except ValueError as exc:
        raise BadRequestError("INVALID_BUCKET", str(exc)) from None
    stores.objects.ensure_bucket(bucket)
    row = ApplicationRow(name=name, bucket=bucket, fields=field_rows)
    try:
        stores.meta.add(row, "creating an application")
    except BaseException as exc:
        if created:
            stores.objects.delete_bucket(bucket)
        if isinstance(exc, DuplicateError):
            raise _exists("application", name) from None
        raise
    return application_of(row)


@entry_point
def try_pipeline(stores: Stores, name: str, image_b64: str) -> list[Step]:
    """Run a pipeline on one image without storing anything; what each step produced."""
    pipeline = get_pipeline(stores, name)
    found = stores.meta.get_operators([*pipeline.processors, pipeline.encoder])
    processors, encoder = ordered_operators(
        pipeline, {each: operator_of(row) for each, row in found.items()})
    _, steps = stores.runner.run(processors, encoder, [Picture(b64=image_b64)])
    return steps
