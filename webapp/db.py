"""The database handle shared by the models and the app factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, Executable
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

# The base class of the tables: Flask-SQLAlchemy's `db.Model`, which type checkers know as `Base`.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def execute(statement: Executable) -> CursorResult[Any]:
    """Run an INSERT, UPDATE or DELETE in the session; its `rowcount` says how many rows it
    touched."""
    return cast("CursorResult[Any]", db.session.execute(statement))
