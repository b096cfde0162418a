"""The declarative base every table of the metadata database is declared on, apart from the
modules declaring them (:mod:`phantoscope.storage.meta` imports them all, so that its
``Base.metadata`` holds every table)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

NAME = 64  # the length of operator, pipeline, application and field names


class Base(DeclarativeBase):
    pass
