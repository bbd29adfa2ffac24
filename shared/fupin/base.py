"""Declarative base with a constraint naming convention, and the column types money and time use."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import Column, DateTime, MetaData, Numeric, String, Table, func
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)
Rate = Numeric(9, 6)

money = Annotated[Decimal, mapped_column(Money)]
rate = Annotated[Decimal, mapped_column(Rate)]
area_code_col = Annotated[str, mapped_column(String(12), index=True)]


def _county_of(context: Any) -> str:
    area = context.get_current_parameters().get("area_code")
    if not area:
        raise ValueError("an area-owned row needs its area_code to derive county_code")
    return str(area)[:6]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table) and _carry_county(table):
            # Mapped too, so `select(Model)` and its subqueries carry it into joins on the county.
            cls.__mapper__.add_property(COUNTY_ATTR, table.c[COUNTY_ATTR])


COUNTY_ATTR = "county"


def same_county(a: Any, b: Any) -> Any:
    """`a.county = b.county` for two county-distributed entities (or subqueries of one): with it, a join or a
    correlated subquery between them stays on the worker holding the county on Citus (without it Citus
    refuses the statement or repartitions it); on plain PostgreSQL it only restates what the ids imply."""

    def col(x: Any) -> Any:
        return x.c[COUNTY_ATTR] if hasattr(x, "c") else x.__table__.c[COUNTY_ATTR]

    return col(a) == col(b)


def _carry_county(table: Table) -> bool:
    """Every table `fupin.distribution` distributes by county carries `county` (the 6-digit prefix of
    `area_code`, Citus's distribution column — it may not be a generated column there): declared here once
    instead of in fifty models, filled from `area_code` by every ORM and Core insert. Raw SQL inserts name it
    themselves (NOT NULL makes a forgotten one fail loudly on plain PostgreSQL too)."""
    from fupin.distribution import COUNTY, PLACEMENT, Distributed

    placement = PLACEMENT.get(table.name)
    if isinstance(placement, Distributed) and placement.column == COUNTY and COUNTY not in table.c:
        table.append_column(Column(COUNTY, String(6), nullable=False, default=_county_of))
        return True
    return False


class UUIDPk:
    id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
