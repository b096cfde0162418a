"""Replicas of one operator: which of its endpoints answer, and spreading calls over them.

An operator registered with several endpoints (``host:port,host:port`` in the REST API, one
row each in the metadata store) is served by several identical processes.
Each `Execute` goes to the up replica with the fewest calls in flight (round-robin among
equals). A replica that fails with UNAVAILABLE or DEADLINE_EXCEEDED is marked down and the
call is retried once on another up replica (Execute has no side effects). A down replica
gets no calls until a `Healthy` probe, with a short time-out and a growing back-off, says
it serves again; probes run on a small shared thread pool, never one thread per request.

Images go to a replica as their files' bytes when its `Identity` says `image_bytes` (asked
before its first images, and again after it was down), else as base64 `datas`, the original
protocol's form. Should a replica that took bytes refuse them (INVALID_ARGUMENT) or answer
nothing for them, its identity is asked again: another operator (an original one) may have
taken its endpoint without the engine seeing it down, and then gets base64.

Asked for thumbnails (an upload's encoder, to describe the image for duplicates), a replica
whose `Identity` says `thumbnails` answers each image's 64 x 64 grey thumbnail with its
vector, from the image it decoded for the model; other replicas are not asked, and the
engine makes the thumbnail itself.

Everything here is a cache of connections and health, rebuilt from the registered
endpoints by any API replica: nothing another API replica needs lives here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from phantoscope.engine.picture import Picture
from phantoscope.imaging.codec import BadImageError
from phantoscope.metrics import OPERATOR_BATCH_IMAGES, OPERATOR_CALL_SECONDS
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import (
    ExecuteResult,
    OperatorCallError,
    OperatorClient,
    OperatorIdentity,
)

ENDPOINT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")
MAX_ENDPOINT_LENGTH = 255  # the endpoint column's width
MAX_REPLICAS = 64  # bounds the replicas asked at registration
DOWN_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
PROBE_TIMEOUT_S = 1.0
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0
PROBE_THREADS = 4


def parse_endpoints(text: str) -> list[str]:
    """The endpoints of ``host:port`` or ``host:port,host:port,...``; ValueError if bad."""
    if not isinstance(text, str):
        raise ValueError(f"endpoint {str(text)[:100]!r} must be a host:port string")
    endpoints = [part.strip() for part in text.split(",")]
    if len(endpoints) > MAX_REPLICAS:
        raise ValueError(f"an endpoint list names at most {MAX_REPLICAS} replicas")
    for endpoint in endpoints:
        if len(endpoint) > MAX_ENDPOINT_LENGTH or not ENDPOINT.match(endpoint):
            raise ValueError(
                f"endpoint {endpoint[:100]!r} is not of the form host:port "
                f"(at most {MAX_ENDPOINT_LENGTH} characters)"
            )
    if len(set(endpoints)) != len(endpoints):
        raise ValueError(f"endpoint list {text[:100]!r} names an endpoint twice")
    return endpoints


@dataclass
class Replica:
    endpoint: str
    client: OperatorClient
    up: bool = True
    outstanding: int = 0
    backoff_s: float = 0.0
    next_probe: float = 0.0
    probe: Future | None = None
    last_error: str = ""
    identity: OperatorIdentity | None = None  # what it said of itself; None: not asked yet

    @property
    def state(self) -> str:
        return "up" if self.up else "down"


class ReplicaSet:
    """The replicas behind one operator's registered endpoints; thread-safe."""

    def __init__(
        self,
        endpoints: Sequence[str],
        clients: Sequence[OperatorClient],
        prober: ThreadPoolExecutor,
        *,
        image_bytes: bool = True,
        thumbnails: bool = True,
    ) -> None:
        self.endpoints = list(endpoints)
        self._replicas = [Replica(e, c) for e, c in zip(endpoints, clients, strict=True)]
        self._prober = prober
        self._image_bytes = image_bytes  # False: base64 to every replica
        self._thumbnails = thumbnails  # False: never ask for thumbnails
        self._lock = threading.Lock()
        self._turn = 0

    def states(self) -> list[dict[str, str]]:
        with self._lock:
            return [{"endpoint": r.endpoint, "state": r.state} for r in self._replicas]

    def execute(self, operator: str, images: Sequence[Picture], *, thumbnails: bool = False
                ) -> ExecuteResult:
        """Images through the operator, as bytes or base64 as each replica takes them: see
        :meth:`_call_replicas`. ``thumbnails``: ask a replica that gives them for each
        image's (``ExecuteResult.thumbnails`` stays empty where it does not)."""
        return self._call_replicas(
            operator, len(images),
            lambda replica: self._execute_images(replica, images, thumbnails),
        )

    def execute_texts(self, operator: str, texts: Sequence[str]) -> ExecuteResult:
        """Texts through a text encoder: see :meth:`_call_replicas`."""
        return self._call_replicas(
            operator, len(texts), lambda replica: replica.client.execute_texts(texts)
        )

    def _execute_images(self, replica: Replica, images: Sequence[Picture], thumbnails: bool
                        ) -> ExecuteResult:
        raws = _raw_forms(images) if self._takes_bytes(replica) else None
        if raws is None:
            return replica.client.execute(datas=[image.b64 for image in images],
                                          thumbnails=self._gives_thumbnails(replica, thumbnails))
        try:
            result = replica.client.execute(
                images=raws, thumbnails=self._gives_thumbnails(replica, thumbnails))
        except OperatorCallError as exc:
            if exc.code != "INVALID_ARGUMENT" or not self._lost_bytes(replica):
                raise
        else:
            if len(result.vectors) or result.crops or not self._lost_bytes(replica):
                return result
        return replica.client.execute(datas=[image.b64 for image in images],
                                      thumbnails=self._gives_thumbnails(replica, thumbnails))

    def _identity(self, replica: Replica) -> OperatorIdentity:
        """What ``replica`` says of itself (asked once while it is up; a failure to answer
        fails the call as an Execute failure would)."""
        known = replica.identity
        if known is None:
            known = replica.identity = replica.client.identity(timeout_s=PROBE_TIMEOUT_S)
        return known

    def _takes_bytes(self, replica: Replica) -> bool:
        """Whether ``replica`` reads image bytes, from its identity."""
        return self._image_bytes and self._identity(replica).image_bytes

    def _gives_thumbnails(self, replica: Replica, wanted: bool) -> bool:
        """Whether to ask ``replica`` for thumbnails: ``wanted`` and its identity says it
        gives them."""
        return wanted and self._thumbnails and self._identity(replica).thumbnails

    def _lost_bytes(self, replica: Replica) -> bool:
        """Ask ``replica``'s identity again after it refused bytes or answered nothing for
        them: True when it no longer reads bytes (another operator took its endpoint)."""
        replica.identity = None
        return not self._takes_bytes(replica)

    def _call_replicas(
        self, operator: str, items: int, call: Callable[[Replica], ExecuteResult]
    ) -> ExecuteResult:
        """``call`` on one up replica, once more on another if that one is down; the last
        failure (code UNAVAILABLE when no replica was up) if none answered. ``items`` (images
        or texts) goes to the batch-size metric."""
        tried: set[str] = set()
        failure: OperatorCallError | None = None
        for _ in range(2):
            replica = self._acquire(tried)
            if replica is None:
                break
            tried.add(replica.endpoint)
            OPERATOR_BATCH_IMAGES.labels(operator).observe(items)
            start = time.perf_counter()
            try:
                result = call(replica)
            except OperatorCallError as exc:
                OPERATOR_CALL_SECONDS.labels(operator, exc.code).observe(
                    time.perf_counter() - start
                )
                self._release(replica, exc)
                if exc.code not in DOWN_CODES:
                    raise
                failure = exc
                continue
            OPERATOR_CALL_SECONDS.labels(operator, "ok").observe(time.perf_counter() - start)
            self._release(replica, None)
            return result
        if failure is not None:
            raise failure
        raise OperatorCallError(
            ",".join(self.endpoints), "Execute", "UNAVAILABLE", self._down_reason()
        )

    def check(self, timeout_s: float) -> list[tuple[str, str | None]]:
        """Ask every replica `Healthy` now (in parallel); each endpoint with its answer, or
        None where it did not answer. Marks replicas up or down accordingly."""
        futures = [self._prober.submit(self._probe, r, timeout_s) for r in self._replicas]
        return [(r.endpoint, f.result()) for r, f in zip(self._replicas, futures, strict=True)]

    # -- internals ------------------------------------------------------------------------

    def _acquire(self, exclude: set[str]) -> Replica | None:
        """The up replica to call next (not in ``exclude``), counted as busy.

        Down replicas are probed once their back-off has passed; when no replica is up, all
        of them are probed at once and waited for (a short time-out), so that an operator
        that came back serves the very next request.
        """
        for attempt in range(2):
            with self._lock:
                now = time.monotonic()
                count = len(self._replicas)
                order = [self._replicas[(self._turn + i) % count] for i in range(count)]
                candidates = [r for r in order if r.up and r.endpoint not in exclude]
                for replica in order:
                    wanted = not candidates and replica.endpoint not in exclude
                    due = wanted or replica.next_probe <= now
                    if not replica.up and replica.probe is None and due:
                        replica.probe = self._prober.submit(
                            self._probe, replica, PROBE_TIMEOUT_S
                        )
                if candidates:
                    self._turn += 1
                    chosen = min(candidates, key=lambda r: r.outstanding)
                    chosen.outstanding += 1
                    return chosen
                probes = [
                    r.probe for r in order if r.probe is not None and r.endpoint not in exclude
                ]
            if attempt or not probes:
                return None
            wait(probes, timeout=PROBE_TIMEOUT_S * 1.5)
        return None

    def _release(self, replica: Replica, failure: OperatorCallError | None) -> None:
        with self._lock:
            replica.outstanding -= 1
            if failure is not None and failure.code in DOWN_CODES:
                self._mark_down(replica, f"{failure.code}: {failure.details}")

    def _mark_down(self, replica: Replica, reason: str) -> None:
        """Under the lock."""
        if replica.up:
            replica.up = False
            replica.backoff_s = FIRST_BACKOFF_S
        else:
            replica.backoff_s = min(max(replica.backoff_s * 2, FIRST_BACKOFF_S), MAX_BACKOFF_S)
        replica.next_probe = time.monotonic() + replica.backoff_s
        replica.last_error = reason

    def _probe(self, replica: Replica, timeout_s: float) -> str | None:
        try:
            answer: str | None = replica.client.health(timeout_s=timeout_s)
            reason = f"it says {answer!r}"
        except OperatorCallError as exc:
            answer, reason = None, f"{exc.code}: {exc.details}"
        with self._lock:
            replica.probe = None
            if answer == HEALTHY:
                replica.up, replica.backoff_s, replica.last_error = True, 0.0, ""
                replica.identity = None  # it may be another operator now: ask again
            else:
                self._mark_down(replica, reason)
        return answer

    def _down_reason(self) -> str:
        with self._lock:
            return "no replica is up: " + "; ".join(
                f"{r.endpoint} ({r.last_error or 'down'})" for r in self._replicas
            )


class OperatorPool:
    """Long-lived gRPC clients, one per endpoint, and the replica sets over them."""

    def __init__(self, timeout_s: float, *, image_bytes: bool = True,
                 thumbnails: bool = True) -> None:
        self.timeout_s = timeout_s
        self.image_bytes = image_bytes  # False: images go to every operator in base64
        self.thumbnails = thumbnails  # False: no operator is asked for thumbnails
        self._clients: dict[str, OperatorClient] = {}
        self._sets: dict[tuple[str, ...], ReplicaSet] = {}
        self._prober = ThreadPoolExecutor(PROBE_THREADS, "operator-probe")
        self._lock = threading.Lock()

    def replicas(self, endpoints: Sequence[str]) -> ReplicaSet:
        """The replica set for an operator's registered endpoints."""
        key = tuple(endpoints)
        with self._lock:
            found = self._sets.get(key)
            if found is None:
                clients = [self._client(endpoint) for endpoint in key]
                found = self._sets[key] = ReplicaSet(
                    key, clients, self._prober, image_bytes=self.image_bytes,
                    thumbnails=self.thumbnails,
                )
            return found

    def states(self, endpoints: Sequence[str]) -> list[dict[str, str]]:
        """Each replica's last known state, without calling it ("unknown" if never used)."""
        with self._lock:
            found = self._sets.get(tuple(endpoints))
        if found is not None:
            return found.states()
        return [{"endpoint": e, "state": "unknown"} for e in endpoints]

    def _client(self, endpoint: str) -> OperatorClient:
        """Under the lock."""
        if endpoint not in self._clients:
            self._clients[endpoint] = OperatorClient(endpoint, timeout_s=self.timeout_s)
        return self._clients[endpoint]

    def close(self) -> None:
        self._prober.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._sets.clear()


def _raw_forms(images: Sequence[Picture]) -> list[bytes] | None:
    """The images' bytes; None when one's base64 does not decode (a processor's broken crop),
    so that the operator gets the text and refuses it, naming the item, as it always has."""
    try:
        return [image.raw for image in images]
    except BadImageError:
        return None
