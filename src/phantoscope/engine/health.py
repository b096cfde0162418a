"""Whether the stores answer and the operators pipelines use are healthy (for `/readyz`)."""

from __future__ import annotations

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import OperatorFailedError
from phantoscope.engine.registry import operator_health
from phantoscope.operators.proto import HEALTHY


@entry_point
def pipeline_operators(stores: Stores) -> list[str]:
    """The metadata store answers: the names of the operators some pipeline uses."""
    stores.meta.ping()
    return sorted({name for row in stores.meta.list_pipelines()
                   for name in (*row.processors, row.encoder)})


@entry_point
def ping_vectors(stores: Stores) -> None:
    stores.vectors.ping()


@entry_point
def ping_objects(stores: Stores) -> None:
    stores.objects.ping()


def check_operator(stores: Stores, name: str) -> None:
    """Raise unless a replica of the operator answers healthy."""
    answer, _replicas = operator_health(stores, name)
    if answer != HEALTHY:
        raise OperatorFailedError("OPERATOR_UNHEALTHY", f"the operator answers {answer!r}")
