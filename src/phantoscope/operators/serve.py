"""Running an operator server in the foreground until Ctrl-C or SIGTERM (or, when its
settings say so, until the process that started it is gone); or a group of them, each a
child process."""

from __future__ import annotations

import logging
import os
import signal
import threading

from phantoscope.config import OperatorSettings
from phantoscope.operators.base import Operator
from phantoscope.operators.process_group import ProcessGroup, wait_for_interrupt
from phantoscope.operators.server import OperatorServer

log = logging.getLogger("phantoscope.operator")

# Where an operator listens unless told: loopback, as the API. `--host` or PHANTOSCOPE_HOST
# (the API's setting too) change it; containers set PHANTOSCOPE_HOST=0.0.0.0.
DEFAULT_HOST = "127.0.0.1"
HOST_VARIABLE = "PHANTOSCOPE_HOST"


def listen_host(host: str | None = None) -> str:
    """``host``, else ``$PHANTOSCOPE_HOST``, else loopback."""
    return host or os.environ.get(HOST_VARIABLE) or DEFAULT_HOST


def serve_forever(
    operator: Operator,
    settings: OperatorSettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Serve ``operator`` on ``host`` (default: ``$PHANTOSCOPE_HOST``, else 127.0.0.1) and
    the port of ``OP_ENDPOINT`` (or ``port``)."""
    host = listen_host(host)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parent = os.getppid()  # before start(), which may take minutes exporting a model
    server = OperatorServer(operator, settings, host=host, port=port)
    bound = server.start()
    log.info(
        "serving %s (%s, dimension %s, metric %s) on %s:%d; Identity reports endpoint %s",
        operator.name, operator.type, operator.dimension, operator.metric_type,
        host, bound, server.settings.endpoint,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    watch_parent = server.settings.stop_with_parent
    try:
        while not stop.wait(0.5):
            if watch_parent and os.getppid() != parent:  # reparented: the parent died
                log.info("the process that started this operator (%d) is gone", parent)
                break
    finally:
        log.info("stopping %s", operator.name)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_group_forever(group: ProcessGroup) -> None:
    """Start ``group``'s processes and keep them running (restarting any that exits) until
    Ctrl-C or SIGTERM, during start-up too, then stop them all."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C
    try:
        group.start()
        log.info(
            "serving on %d processes; register them as one operator with the endpoint %s",
            len(group.endpoints), group.endpoint_list,
        )
        wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("stopping %d operator processes", len(group.endpoints))
        group.stop()
        signal.signal(signal.SIGTERM, previous)
