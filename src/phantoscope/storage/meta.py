"""Metadata in SQL (SQLite, MySQL/MariaDB, PostgreSQL) through SQLAlchemy 2.

Tables: operators (with their ordered replica endpoints and the vocabulary of the labels
they give), pipelines (with their ordered processors), applications (with their fields),
entities (one uploaded image), vectors (one row per vector in Milvus, with the crop box it
came from) and entity labels (class id and probability, for text search).

The schema is versioned: :mod:`phantoscope.storage.migrations` (Alembic) builds a new
database and upgrades one made by an earlier release when a :class:`MetaStore` opens it; the
models here describe the newest revision.

The catalog (operators, pipelines, applications and their lists) carries a version number
that every transaction changing it raises (:func:`catalog_version`): what a process keeps of
the catalog stays valid exactly while the number it read it at is unchanged, whichever
process sharing the database made the change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    case,
    column,
    create_engine,
    delete,
    event,
    exists,
    func,
    inspect,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import (
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    sessionmaker,
    validates,
)

from phantoscope.storage import (
    duplicate_rows,  # noqa: F401 - its tables join Base's
    job_rows,  # noqa: F401 - its tables join Base's
    migrations,
    watch_rows,  # noqa: F401 - its tables join Base's
)
from phantoscope.storage.prefix_range import prefix_successor
from phantoscope.storage.row_base import NAME, Base
from phantoscope.storage.store_error import StoreError

ENTITY_NAME = 1024
LABEL = 64


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


CONNECT_TIMEOUT_S = 5


class MetaStoreError(StoreError):
    """The metadata database failed; the message says what was being done."""


class DuplicateError(MetaStoreError):
    """A row with the same name already exists."""


class OperatorRow(Base):
    __tablename__ = "operators"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    backend: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    input: Mapped[str] = mapped_column(String(32))
    output: Mapped[str] = mapped_column(String(32))
    metric_type: Mapped[str] = mapped_column(String(16))
    dimension: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    # revision 0003: the vocabulary of the labels it gives with its vectors ("imagenet-1k"),
    # "" when it gives none
    labels: Mapped[str] = mapped_column(String(NAME), default="", server_default="")
    endpoint_rows: Mapped[list[OperatorEndpointRow]] = relationship(
        order_by="OperatorEndpointRow.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def endpoints(self) -> list[str]:
        """The ``host:port`` of each replica, in registration order."""
        return [row.endpoint for row in self.endpoint_rows]


class OperatorEndpointRow(Base):
    __tablename__ = "operator_endpoints"
    operator: Mapped[str] = mapped_column(
        ForeignKey("operators.name", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(255))


def endpoint_rows(endpoints: Sequence[str]) -> list[OperatorEndpointRow]:
    """The rows of an operator's replica endpoints, in that order."""
    return [OperatorEndpointRow(position=i, endpoint=e) for i, e in enumerate(endpoints)]


class PipelineRow(Base):
    __tablename__ = "pipelines"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    input: Mapped[str] = mapped_column(String(32))
    output: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    encoder: Mapped[str] = mapped_column(ForeignKey("operators.name"))
    dimension: Mapped[int] = mapped_column(Integer)
    metric_type: Mapped[str] = mapped_column(String(16))
    index_file_size: Mapped[int] = mapped_column(Integer)
    collection: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    # revision 0004: the text encoder paired with the encoder (same embedding space), if any
    text_encoder: Mapped[str | None] = mapped_column(
        String(NAME), ForeignKey("operators.name"), nullable=True, default=None)
    steps: Mapped[list[PipelineProcessorRow]] = relationship(
        order_by="PipelineProcessorRow.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def processors(self) -> list[str]:
        return [step.operator for step in self.steps]


class PipelineProcessorRow(Base):
    __tablename__ = "pipeline_processors"
    pipeline: Mapped[str] = mapped_column(
        ForeignKey("pipelines.name", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator: Mapped[str] = mapped_column(ForeignKey("operators.name"))


class ApplicationRow(Base):
    __tablename__ = "applications"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    fields: Mapped[list[FieldRow]] = relationship(
        order_by="FieldRow.position", cascade="all, delete-orphan", lazy="selectin"
    )


class FieldRow(Base):
    __tablename__ = "application_fields"
    application: Mapped[str] = mapped_column(
        ForeignKey("applications.name", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    pipeline: Mapped[str | None] = mapped_column(ForeignKey("pipelines.name"), nullable=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)


class EntityRow(Base):
    __tablename__ = "entities"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    application: Mapped[str] = mapped_column(
        ForeignKey("applications.name", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(NAME))
    object_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    # revision 0002: given by the user, or read from the image; NULL for older entities.
    # taken_at is written as an aware UTC moment (whatever zone it is set in); SQLite and
    # MariaDB keep its wall clock only, so read it back through `taken_at_utc`.
    name: Mapped[str | None] = mapped_column(String(ENTITY_NAME), nullable=True)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    vectors: Mapped[list[VectorRow]] = relationship(
        order_by="VectorRow.id", cascade="all, delete-orphan", lazy="selectin"
    )
    labels: Mapped[list[LabelRow]] = relationship(  # revision 0003
        order_by="(LabelRow.score.desc(), LabelRow.label)", cascade="all, delete-orphan",
        lazy="selectin",
    )

    @validates("taken_at")
    def _utc_taken_at(self, _key: str, moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        if moment.tzinfo is None:
            raise ValueError("taken_at must be an aware datetime")
        return moment.astimezone(UTC)

    @property
    def taken_at_utc(self) -> datetime | None:
        """``taken_at`` as an aware UTC moment, whichever database it came back from."""
        moment = self.taken_at
        if moment is None:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    __table_args__ = (  # as revision 0002 makes them; its docstring says which query uses them
        Index("ix_entities_application_name", "application", "name",
              postgresql_ops={"name": "varchar_pattern_ops"}, mysql_length={"name": 512}),
        Index("ix_entities_application_taken_at", "application", "taken_at"),
    )


class VectorRow(Base):
    __tablename__ = "vectors"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entity_id: Mapped[int] = mapped_column(
        ForeignKey("entities.id", ondelete="CASCADE"), index=True
    )
    pipeline: Mapped[str] = mapped_column(String(NAME))
    box_left: Mapped[int | None] = mapped_column(Integer, nullable=True)
    box_top: Mapped[int | None] = mapped_column(Integer, nullable=True)
    box_right: Mapped[int | None] = mapped_column(Integer, nullable=True)
    box_bottom: Mapped[int | None] = mapped_column(Integer, nullable=True)
    box_score: Mapped[float | None] = mapped_column(Float, nullable=True)


class LabelRow(Base):
    """One label of an entity's image: a class id of its encoder's vocabulary and its
    probability. ``application`` and ``field`` repeat the entity's, so that the search
    index answers a text search alone (see revision 0003)."""

    __tablename__ = "entity_labels"
    entity_id: Mapped[int] = mapped_column(
        ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(LABEL), primary_key=True)
    application: Mapped[str] = mapped_column(String(NAME))
    field: Mapped[str] = mapped_column(String(NAME))
    score: Mapped[float] = mapped_column(Double)  # as given: MySQL's FLOAT would round it

    __table_args__ = (
        Index("ix_entity_labels_search", "application", "field", "label", "entity_id", "score"),
    )


class PendingUploadRow(Base):
    """An upload that may have written objects and vectors but not yet its entity rows.

    Committed before the first object is written; deleted in the transaction that adds the
    entities, or by the undo of a failed upload. One left behind marks what a crash left.
    A repair first sets ``claimed``: from then on the upload can no longer commit.
    """

    __tablename__ = "pending_uploads"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    application: Mapped[str] = mapped_column(String(NAME))
    bucket: Mapped[str] = mapped_column(String(63))
    object_keys: Mapped[list[str]] = mapped_column(JSON)
    vectors: Mapped[dict[str, list[int]]] = mapped_column(JSON)  # vector ids by collection
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now, index=True)


class CatalogVersionRow(Base):
    """The one row counting the transactions that changed the catalog."""

    __tablename__ = "catalog_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


CATALOG_ROWS = (OperatorRow, OperatorEndpointRow, PipelineRow, PipelineProcessorRow,
                ApplicationRow, FieldRow)


def catalog_version(session: Session) -> int:
    return session.execute(select(CatalogVersionRow.version)).scalar_one()


def _raise_catalog_version(session: Session, _context: object, _instances: object) -> None:
    """Before a flush that adds, changes or deletes catalog rows: one more catalog version,
    in the same transaction (ORM changes only; the catalog is never written otherwise)."""
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(row, CATALOG_ROWS) for row in changed):
        version = CatalogVersionRow.__table__.c.version
        session.execute(CatalogVersionRow.__table__.update().values(version=version + 1))


def _ensure_catalog_version(engine: Engine) -> None:
    """The version row, made by whichever process opens the database first."""
    with engine.begin() as connection:
        if connection.execute(select(CatalogVersionRow.id)).first() is not None:
            return
    try:
        with engine.begin() as connection:
            connection.execute(CatalogVersionRow.__table__.insert(), {"id": 1, "version": 0})
    except IntegrityError:
        pass  # another process made it meanwhile


class UploadAbandonedError(MetaStoreError):
    """An upload ran so long that a repair took it for interrupted and is removing it."""


def operators_named(session: Session, names: Sequence[str]) -> dict[str, OperatorRow]:
    """The operators of those names that exist, by name, in one query of ``session``
    (their endpoints joined in)."""
    query = (select(OperatorRow).where(OperatorRow.name.in_(set(names)))
             .options(joinedload(OperatorRow.endpoint_rows)))
    return {row.name: row for row in session.scalars(query).unique()}


def migrate_operator_endpoints(engine: Engine) -> int:
    """Move the endpoints of a database made before `operator_endpoints` into that table.

    Earlier versions kept an operator's endpoints in ``operators.endpoint``, a ``NOT NULL``
    column holding ``host:port`` or ``host:port,host:port,...``. This gives every operator
    without endpoint rows one row per listed endpoint, then drops the column: the rows are
    the one place endpoints live, and the old ``NOT NULL`` column would refuse new operators.
    The column is not in the table definition (it is read through a bare table clause).
    Each step is idempotent (a run cut short between them finishes on the next open), and
    when another process opening the same database migrates it first, this one finds the
    column gone.
    Returns how many operators got endpoint rows; 0 (and no change) on a current database.
    """

    def has_column() -> bool:
        return "endpoint" in {c["name"] for c in inspect(engine).get_columns("operators")}

    if not has_column():
        return 0
    legacy = table("operators", column("name", String), column("endpoint", String))
    current = OperatorEndpointRow.__table__
    try:
        with engine.begin() as connection:
            missing = select(legacy.c.name, legacy.c.endpoint).where(
                ~exists().where(current.c.operator == legacy.c.name))
            rows = [
                {"operator": name, "position": position, "endpoint": endpoint}
                for name, listed in connection.execute(missing)
                for position, endpoint in enumerate(
                    part.strip() for part in listed.split(",") if part.strip())
            ]
            if rows:
                connection.execute(current.insert(), rows)
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE operators DROP COLUMN endpoint"))
    except SQLAlchemyError:
        if has_column():
            raise
        return 0
    return len({row["operator"] for row in rows})


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any]
    if parsed.get_backend_name() == "sqlite":  # a file: no connection to lose
        options = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    else:  # a server may drop a pooled connection (restart, idle timeout): test it first;
        # a server that went away fails a request in seconds, not minutes
        options = {"pool_pre_ping": True,
                   "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    engine = create_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        _enable_sqlite_foreign_keys(engine)
    return engine


def _failure(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc)


def upgrade_schema(engine: Engine) -> migrations.Migration:
    """Bring the database to the newest revision: build an empty one, upgrade one made by
    an earlier release (its endpoints first moved into rows: :func:`migrate_operator_endpoints`),
    apply what is pending; safe while other processes open it too."""
    migration = migrations.upgrade(engine, legacy=migrate_operator_endpoints)
    _ensure_catalog_version(engine)
    return migration


def schema_status(url: str) -> migrations.Status:
    """Where the database at ``url`` stands and what opening it would apply; changes
    nothing (an SQLite file that does not exist is not made)."""
    parsed = make_url(url)
    if (parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
            and not Path(parsed.database).is_file()):
        return migrations.Status(None, migrations.head(), migrations.pending(None), legacy=False)
    engine = _create_engine(url)
    try:
        return migrations.status(engine)
    except SQLAlchemyError as exc:
        raise MetaStoreError(f"cannot read the metadata database: {_failure(exc)}") from None
    finally:
        engine.dispose()


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


@dataclass(frozen=True)
class EntityNarrowing:
    """Conditions every wanted entity meets, for SQL to leave the others out early. A
    narrowing may let through more rows than it names (callers check each row they get),
    never fewer.

    ``name_prefix``: the name starts with it. ``taken_at``: (op, aware moment) pairs, op one
    of eq, gt, gte, lt, lte, each true of the entity's ``taken_at`` (NULL fails them all).
    ``labels``: sets of class ids; for each, the entity has a label in it of probability at
    least ``label_min_score``."""

    name_prefix: str | None = None
    taken_at: tuple[tuple[str, datetime], ...] = ()
    labels: tuple[frozenset[str], ...] = ()
    label_min_score: float = 0.0


def _like_pattern(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix`` (escape character ``!``: a
    backslash would need quoting differently on each database)."""
    escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped + "%"


def _narrowed(query: Any, application: str, narrowing: EntityNarrowing, dialect: str) -> Any:
    """``query`` over the application's entities with the narrowing's conditions added.

    Each set of labels is a subquery: the application's ``entity_labels`` rows of those
    classes (``ix_entity_labels_search`` leads with the application).

    A name prefix is a range on SQLite (binary order: exactly the prefix, through the
    (application, name) index; SQLite's LIKE ignores case and uses no index) and an
    escaped LIKE elsewhere (PostgreSQL: exact, through the varchar_pattern_ops index;
    MariaDB's usual collations ignore case: a superset, which callers check)."""
    prefix = narrowing.name_prefix
    if prefix:
        if dialect == "sqlite":
            query = query.where(EntityRow.name >= prefix)
            upper = prefix_successor(prefix)
            if upper is not None:
                query = query.where(EntityRow.name < upper)
        else:
            query = query.where(EntityRow.name.like(_like_pattern(prefix), escape="!"))
    column = EntityRow.taken_at
    for op, moment in narrowing.taken_at:
        moment = moment.astimezone(UTC)
        condition = {"eq": column == moment, "gt": column > moment, "gte": column >= moment,
                     "lt": column < moment, "lte": column <= moment}[op]
        query = query.where(condition)
    for classes in narrowing.labels:
        query = query.where(EntityRow.id.in_(
            select(LabelRow.entity_id).where(LabelRow.application == application,
                                             LabelRow.label.in_(sorted(classes)),
                                             LabelRow.score >= narrowing.label_min_score)))
    return query


class MetaStore:
    """Sessions over one database; every method is one transaction."""

    def __init__(self, url: str) -> None:
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _raise_catalog_version)
        try:
            self.migration = upgrade_schema(self.engine)  # what opening it applied
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise MetaStoreError(f"cannot open the metadata database: {_failure(exc)}") from None

    @contextmanager
    def session(self, doing: str) -> Iterator[Session]:
        """A transaction; SQL failures become :class:`MetaStoreError` naming ``doing``."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise DuplicateError(f"{doing}: {exc.orig}") from None
        except SQLAlchemyError as exc:
            session.rollback()
            raise MetaStoreError(f"{doing} failed in the metadata database: {exc}") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise :class:`MetaStoreError` unless the database answers ``SELECT 1``."""
        with self.session("checking the database") as session:
            session.execute(select(1))

    def row_counts(self) -> dict[str, int]:
        """Rows in every table, by table name."""
        with self.session("counting rows") as session:
            return {
                each.name: int(session.scalar(select(func.count()).select_from(each)) or 0)
                for each in Base.metadata.sorted_tables
            }

    # -- operators ------------------------------------------------------------------------

    def add(self, row: Base, doing: str) -> None:
        with self.session(doing) as session:
            session.add(row)

    def get_operator(self, name: str) -> OperatorRow | None:
        with self.session("reading an operator") as session:
            return session.get(OperatorRow, name)

    def get_operators(self, names: Sequence[str]) -> dict[str, OperatorRow]:
        """The operators of those names that exist, by name, in one query."""
        with self.session("reading operators") as session:
            return operators_named(session, names)

    def list_operators(self) -> list[OperatorRow]:
        with self.session("listing operators") as session:
            return list(session.scalars(select(OperatorRow).order_by(OperatorRow.created_at)))

    def set_operator_endpoints(self, name: str, endpoints: Sequence[str]) -> None:
        """Replace the operator's endpoints with ``endpoints``, in one transaction."""
        with self.session("updating an operator's endpoints") as session:
            row = session.get(OperatorRow, name)
            if row is not None:
                row.endpoint_rows.clear()
                session.flush()  # the old rows go before new ones take their positions
                row.endpoint_rows.extend(endpoint_rows(endpoints))

    def set_operator_labels(self, name: str, labels: str) -> None:
        """Record the vocabulary of the labels the operator gives ("" for none)."""
        with self.session("updating an operator's labels") as session:
            row = session.get(OperatorRow, name)
            if row is not None and row.labels != labels:
                row.labels = labels

    def delete_operator(self, name: str) -> None:
        with self.session("deleting an operator") as session:
            row = session.get(OperatorRow, name)
            if row is not None:
                session.delete(row)

    def pipelines_using(self, operator: str) -> list[str]:
        with self.session("finding pipelines using an operator") as session:
            as_encoder = select(PipelineRow.name).where(
                (PipelineRow.encoder == operator) | (PipelineRow.text_encoder == operator))
            as_processor = select(PipelineProcessorRow.pipeline).where(
                PipelineProcessorRow.operator == operator
            )
            return sorted(set(session.scalars(as_encoder)) | set(session.scalars(as_processor)))

    # -- pipelines ------------------------------------------------------------------------

    def get_pipeline(self, name: str) -> PipelineRow | None:
        with self.session("reading a pipeline") as session:
            return session.get(PipelineRow, name)

    def list_pipelines(self) -> list[PipelineRow]:
        with self.session("listing pipelines") as session:
            return list(session.scalars(select(PipelineRow).order_by(PipelineRow.created_at)))

    def delete_pipeline(self, name: str) -> None:
        with self.session("deleting a pipeline") as session:
            row = session.get(PipelineRow, name)
            if row is not None:
                session.delete(row)

    def applications_using(self, pipeline: str) -> list[str]:
        with self.session("finding applications using a pipeline") as session:
            query = select(FieldRow.application).where(FieldRow.pipeline == pipeline)
            return sorted(set(session.scalars(query)))

    # -- applications ---------------------------------------------------------------------

    def get_application(self, name: str) -> ApplicationRow | None:
        with self.session("reading an application") as session:
            return session.get(ApplicationRow, name)

    def list_applications(self) -> list[ApplicationRow]:
        with self.session("listing applications") as session:
            query = select(ApplicationRow).order_by(ApplicationRow.created_at)
            return list(session.scalars(query))

    def delete_application(self, name: str) -> None:
        """Delete the application with all its entity and vector rows."""
        with self.session("deleting an application") as session:
            entity_ids = select(EntityRow.id).where(EntityRow.application == name)
            session.execute(VectorRow.__table__.delete().where(
                VectorRow.entity_id.in_(entity_ids)))
            session.execute(LabelRow.__table__.delete().where(LabelRow.application == name))
            session.execute(EntityRow.__table__.delete().where(EntityRow.application == name))
            row = session.get(ApplicationRow, name)
            if row is not None:
                session.delete(row)

    # -- entities -------------------------------------------------------------------------

    def add_entities(
        self, entities: Sequence[EntityRow], pending_upload: int | None = None,
        replacing: Sequence[int] = (),
    ) -> None:
        """Add the rows; with ``pending_upload``, also delete that journal row, in one
        transaction, refusing if a repair has claimed (or removed) it. The entities
        ``replacing`` names are deleted in the same transaction."""
        with self.session("saving entities") as session:
            for entity_id in replacing:
                old = session.get(EntityRow, entity_id)
                if old is not None:
                    session.delete(old)
            if pending_upload is not None:
                closed = session.execute(delete(PendingUploadRow).where(
                    PendingUploadRow.id == pending_upload, PendingUploadRow.claimed.is_(False)))
                if closed.rowcount != 1:
                    raise UploadAbandonedError(
                        f"upload {pending_upload} outlived the repair grace time and was "
                        "taken for interrupted; nothing of it was kept")
            session.add_all(entities)

    def count_entities(self, application: str) -> int:
        with self.session("counting entities") as session:
            query = select(func.count()).select_from(EntityRow).where(
                EntityRow.application == application)
            return int(session.scalar(query) or 0)

    def list_entities(self, application: str, offset: int, limit: int) -> list[EntityRow]:
        with self.session("listing entities") as session:
            query = (select(EntityRow).where(EntityRow.application == application)
                     .order_by(EntityRow.id).offset(offset).limit(limit))
            return list(session.scalars(query))

    def scan_entities(self, application: str, after_id: int, limit: int,
                      narrowing: EntityNarrowing | None = None) -> list[EntityRow]:
        """Up to ``limit`` of the application's entities with ids above ``after_id``, by id,
        narrowed (a listing reads on from the last id it got: each call is one indexed
        range, however far it has gone)."""
        with self.session("reading entities") as session:
            query = (select(EntityRow).where(EntityRow.application == application,
                                             EntityRow.id > after_id)
                     .order_by(EntityRow.id).limit(limit))
            if narrowing is not None:
                query = _narrowed(query, application, narrowing, self.engine.dialect.name)
            return list(session.scalars(query))

    def update_entity(self, application: str, entity_id: int,
                      changes: Mapping[str, Any]) -> EntityRow | None:
        """Set the entity's ``name`` and/or ``attributes`` (the keys of ``changes``) in one
        transaction; the row as it now is, or None when the application has no such entity."""
        unknown = set(changes) - {"name", "attributes"}
        if unknown:
            raise ValueError(f"entities cannot change {sorted(unknown)} here")
        with self.session("updating an entity") as session:
            row = session.get(EntityRow, entity_id)
            if row is None or row.application != application:
                return None
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return row

    def entity_vectors(self, application: str) -> list[tuple[str, int]]:
        """(pipeline, vector id) of every vector of the application's entities."""
        with self.session("listing an application's vectors") as session:
            query = (select(VectorRow.pipeline, VectorRow.id).join(EntityRow)
                     .where(EntityRow.application == application))
            return [(pipeline, vector_id) for pipeline, vector_id in session.execute(query)]

    def entity_object_keys(self, application: str) -> list[str]:
        with self.session("listing an application's objects") as session:
            query = select(EntityRow.object_key).where(EntityRow.application == application)
            return list(session.scalars(query))

    def get_entity(self, application: str, entity_id: int) -> EntityRow | None:
        with self.session("reading an entity") as session:
            row = session.get(EntityRow, entity_id)
            return row if row is not None and row.application == application else None

    def find_entity_by_hash(self, application: str, sha256: str) -> EntityRow | None:
        with self.session("finding an entity by content") as session:
            query = select(EntityRow).where(
                EntityRow.application == application, EntityRow.sha256 == sha256).limit(1)
            return session.scalars(query).first()

    def delete_entity(self, entity_id: int) -> None:
        with self.session("deleting an entity") as session:
            row = session.get(EntityRow, entity_id)
            if row is not None:
                session.delete(row)

    def entities_for_vectors(
        self, vector_ids: Sequence[int]
    ) -> dict[int, tuple[EntityRow, VectorRow]]:
        """Map vector ids to their entity and vector rows (ids without rows are left out)."""
        if not vector_ids:
            return {}
        wanted = set(vector_ids)
        with self.session("looking up search hits") as session:
            hit_entities = select(VectorRow.entity_id).where(VectorRow.id.in_(wanted))
            query = (select(EntityRow).where(EntityRow.id.in_(hit_entities))
                     .options(joinedload(EntityRow.vectors)))  # one query, all their vectors
            return {vector.id: (entity, vector)
                    for entity in session.scalars(query).unique()
                    for vector in entity.vectors if vector.id in wanted}

    def ranked_by_labels(self, application: str, field: str,
                         label_sets: Sequence[Collection[str]], offset: int, limit: int
                         ) -> list[tuple[int, float]]:
        """(entity id, score) of the application's entities of ``field`` having any label of
        ``label_sets``, best first (ties by id), ``limit`` of them after the first ``offset``.

        An entity's score is the mean over the sets of min(1, the sum of the probabilities of
        its labels in that set): in [0, 1]. One aggregate query over the search index; the
        labels are bound parameters."""
        if not label_sets or limit <= 0:
            return []
        wanted = sorted(set().union(*label_sets))
        column = LabelRow.score
        capped = []
        for labels in label_sets:
            total = (func.sum(column) if len(label_sets) == 1  # every row counts: no CASE
                     else func.sum(case((LabelRow.label.in_(sorted(labels)), column),
                                        else_=0.0)))
            capped.append(case((total > 1.0, 1.0), else_=total))
        score = (sum(capped[1:], capped[0]) / len(capped)).label("score")
        query = (select(LabelRow.entity_id, score)
                 .where(LabelRow.application == application, LabelRow.field == field,
                        LabelRow.label.in_(wanted))
                 .group_by(LabelRow.entity_id)
                 .order_by(score.desc(), LabelRow.entity_id).offset(offset).limit(limit))
        with self.session("ranking entities by label") as session:
            return [(int(entity), float(found)) for entity, found in session.execute(query)]

    def entities_by_id(self, application: str, ids: Sequence[int]) -> dict[int, EntityRow]:
        """The application's entities of those ids that exist (with their vectors and
        labels), by id, in one query (and one per list loaded beside it)."""
        if not ids:
            return {}
        with self.session("reading entities") as session:
            # by primary key alone: a condition on the application would let SQLite take
            # the application's index and read all its entities
            query = select(EntityRow).where(EntityRow.id.in_(set(ids)))
            return {row.id: row for row in session.scalars(query)
                    if row.application == application}

    # -- the upload journal and consistency checks ----------------------------------------

    def pending_uploads(self, created_before: datetime | None = None) -> list[PendingUploadRow]:
        """Journal rows, oldest first; only those made before ``created_before`` if given."""
        with self.session("reading the upload journal") as session:
            query = select(PendingUploadRow).order_by(PendingUploadRow.created_at)
            if created_before is not None:
                query = query.where(PendingUploadRow.created_at < created_before)
            return list(session.scalars(query))

    def claim_pending_uploads(self, ids: Sequence[int]) -> list[PendingUploadRow]:
        """Mark the journal rows claimed, so that their uploads can no longer commit; the
        claimed rows that still exist (an upload that committed first has none left)."""
        claimed: list[PendingUploadRow] = []
        for chunk in _chunks(ids):
            with self.session("claiming interrupted uploads") as session:
                session.execute(update(PendingUploadRow)
                                .where(PendingUploadRow.id.in_(chunk)).values(claimed=True))
                claimed.extend(session.scalars(select(PendingUploadRow).where(
                    PendingUploadRow.id.in_(chunk), PendingUploadRow.claimed.is_(True))))
        return claimed

    def delete_pending_uploads(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            with self.session("closing upload journal rows") as session:
                session.execute(delete(PendingUploadRow).where(PendingUploadRow.id.in_(chunk)))

    def referenced(
        self, object_keys: Sequence[str], vector_ids: Sequence[int]
    ) -> tuple[set[str], set[int]]:
        """Which of these object keys an entity row names, and which vector ids have rows."""
        keys: set[str] = set()
        ids: set[int] = set()
        with self.session("finding referenced objects and vectors") as session:
            for chunk in _chunks(object_keys):
                keys.update(session.scalars(
                    select(EntityRow.object_key).where(EntityRow.object_key.in_(chunk))))
            for chunk in _chunks(vector_ids):
                ids.update(session.scalars(select(VectorRow.id).where(VectorRow.id.in_(chunk))))
        return keys, ids

    def all_vector_rows(self) -> list[tuple[int, str, int]]:
        """(vector id, pipeline, entity id) of every vector row."""
        with self.session("listing vector rows") as session:
            query = select(VectorRow.id, VectorRow.pipeline, VectorRow.entity_id)
            return [(int(i), pipeline, int(entity)) for i, pipeline, entity in
                    session.execute(query)]

    def all_entity_objects(self) -> list[tuple[int, str, str]]:
        """(entity id, application, object key) of every entity row."""
        with self.session("listing entity rows") as session:
            query = select(EntityRow.id, EntityRow.application, EntityRow.object_key)
            return [(int(i), application, key) for i, application, key in
                    session.execute(query)]

    def delete_entities(self, ids: Sequence[int]) -> None:
        """Delete entity rows with their vector rows, in batches."""
        for chunk in _chunks(ids):
            with self.session("deleting entities") as session:
                session.execute(delete(VectorRow).where(VectorRow.entity_id.in_(chunk)))
                session.execute(delete(LabelRow).where(LabelRow.entity_id.in_(chunk)))
                session.execute(delete(EntityRow).where(EntityRow.id.in_(chunk)))


def _chunks(items: Sequence[Any], size: int = 1000) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (the length of one SQL IN list)."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
