"""Loading the columns the AGESH rules need, scoped to a perimeter, as plain records.

Hot paths select columns (never ORM objects) and share one filter subquery so that the
database, not Python, narrows the rows to the caller's perimeter. The coverage, anomalies
and PIAL reports read up to a few hundred thousand rows per table: they take the driver's
own rows (`_tuples`) with dates as the driver gives them, turn those into day ordinals once
per distinct value, and build the lean tuples of `core.rules.records` in the same pass that
groups them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple, TypeAlias

from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    exists,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from core.dates import SchoolYear
from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    Decision,
    Eleve,
    Etablissement,
    Mission,
    Pial,
    Scolarisation,
)
from core.perimeter import Perimeter
from core.rules import anomalies as anomaly_rules
from core.rules.records import (
    FAR,
    AnomalyAccRow,
    DecisionRec,
    DecisionRow,
    Span,
)

AnySelect: TypeAlias = Select[*tuple[Any, ...]]

DECISION_COLS = (
    Decision.id,
    Decision.eleve_id,
    Decision.type,
    Decision.heures,
    Decision.debut,
    Decision.fin,
)


async def _fetch(session: AsyncSession, q: AnySelect) -> list[Any]:
    """Rows of a select whose columns need SQLAlchemy's conversions (typed dates)."""
    conn = await session.connection()
    return list((await conn.execute(q)).all())


def _driver_rows(conn: Connection, q: AnySelect) -> list[Any]:
    # A streamed result would have buffered a first row before the driver's are taken.
    result = conn.execute(q, execution_options={"stream_results": False})
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


async def _tuples(session: AsyncSession, q: AnySelect) -> list[Any]:
    """The driver's own rows (tuples on SQLite, records on PostgreSQL) of a lean select.

    The reports read up to a few hundred thousand rows per statement, and SQLAlchemy's
    result rows cost about as much again as the driver's read (measured: 448,000 rows, 1.4 s
    → 2.1 s). SQLAlchemy still compiles, binds and executes the statement; only its rows
    are skipped, so every column must be one the driver gives as the rules read it: text,
    numbers, flags (0/1 on SQLite, booleans on PostgreSQL: only ever tested for truth) and
    dates through `raw`. Typed dates go through `_fetch`.
    """
    conn = await session.connection()
    return await conn.run_sync(_driver_rows, q)


async def _wrote(session: AsyncSession) -> bool:
    """The session's transaction holds writes not yet committed, which a connection of its
    own would not see."""
    conn = await session.connection()
    name = conn.dialect.name
    if name == "sqlite":
        driver = (await conn.get_raw_connection()).driver_connection
        return bool(getattr(driver, "in_transaction", True))
    if name == "postgresql":
        # An id is assigned to a transaction at its first write.
        q = text("SELECT txid_current_if_assigned() IS NOT NULL")
        return bool((await conn.execute(q)).scalar_one())
    return True


def _connections_at_hand(engine: AsyncEngine) -> int:
    """How many connections the pool gives now without waiting: idle ones, and those it
    may still open. A report holding the session's connection while it waits for another
    could, with many reports at once, wait on the others until the pool's timeout."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        limit = getattr(pool, "_max_overflow", 0)  # -1: no limit
        can_open = 2 if limit < 0 else max(0, limit - pool.overflow())
        return pool.checkedin() + can_open
    return 2 if isinstance(pool, NullPool) else 0  # a pool sharing one connection would not do


Rows: TypeAlias = list[Any]


async def _search_aside(
    session: AsyncSession, q: AnySelect, split: tuple[Any, Sequence[Any]] | None = None
) -> asyncio.Task[Rows | None] | None:
    """`q` started on a connection of its own, to run while the session reads something
    else. None when it must run on the session: the session has written something not yet
    committed, which another connection would not see. The task's result is None when, as
    it starts, the pool has no connection at hand: a search aside never waits for the pool,
    the session runs it instead.

    SQLite works through a statement without holding Python's interpreter lock: a long
    search in the database (a join over hundreds of thousands of rows that keeps a few
    thousand) then goes on on another core while Python reads and groups other rows. Only
    for such searches: a read that returns most of what it visits builds its rows under the
    lock, and two threads doing that at once are slower than one (measured: the coverage
    report's 448,000 links read aside, 8.8 s → 15 s). Like every statement of a report, the
    search sees the database as committed when it starts (SQLite reads outside a write
    transaction, PostgreSQL's READ COMMITTED).

    `split`: (column, conditions): the unique column `q` is ordered by first, and the
    conditions that bound the rows `q` goes through. The search then runs in two halves,
    below and from the column's median value among those rows, at once on two connections
    if the pool has a second one at hand; its rows are those of the first half followed by
    those of the second: the same rows in the same order. (Two statements, started a few
    milliseconds apart: a change committed between their starts is seen by one only.)
    """
    bind = session.bind
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    # `_wrote` first: it takes the session's own connection from the pool, if not yet held.
    if engine is None or await _wrote(session):
        return None
    if split is None:
        return asyncio.ensure_future(_tuples_on(engine, q))
    return asyncio.ensure_future(_in_halves(engine, q, *split))


async def _tuples_on(engine: AsyncEngine, q: AnySelect) -> Rows | None:
    """`_tuples` on a connection of the engine's own; None if the pool has none at hand."""
    # No await between this test and the checkout: no other task can take it meanwhile.
    if _connections_at_hand(engine) < 1:
        return None
    async with engine.connect() as conn:
        return await conn.run_sync(_driver_rows, q)


async def _in_halves(
    engine: AsyncEngine, q: AnySelect, column: Any, bounds: Sequence[Any]
) -> Rows | None:
    """The rows of `q`, in two halves split at the median of `column` among the rows
    `bounds` select, the second half on another connection when one is at hand."""
    if _connections_at_hand(engine) < 1:
        return None
    async with engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(column.table).where(*bounds))
        ).scalar_one()
        median = select(column).where(*bounds).order_by(column).offset(count // 2).limit(1)
        pivot = (await conn.execute(median)).scalar_one_or_none()
        if pivot is None:
            return await conn.run_sync(_driver_rows, q)
        low, high = q.where(column < pivot), q.where(column >= pivot)
        aside = asyncio.ensure_future(_tuples_on(engine, high))
        try:
            rows: Rows = await conn.run_sync(_driver_rows, low)
            rest = await aside
        except BaseException:
            await _forget(aside)
            raise
        if rest is None:  # no second connection after all: here, after the first half
            rest = await conn.run_sync(_driver_rows, high)
    rows.extend(rest)
    return rows


async def _forget(task: asyncio.Task[Rows | None]) -> None:
    """Stop a search aside whose rows are no longer wanted (the report failed or was
    cancelled) and wait until its connection is back in the pool; its own error, if any,
    is not the report's."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


def raw(column: Any) -> ColumnElement[Any]:
    """A date column as the driver returns it, skipping SQLAlchemy's per-value conversion.

    The SQL is unchanged (no CAST): SQLite gives the stored ISO text, PostgreSQL a `date`;
    `DayOrdinals` turns either into a day ordinal.
    """
    return type_coerce(column, String())


class DayOrdinals(dict[Any, int]):
    """Day ordinal of a raw date value (ISO text or `date`); `None`, an open end, is FAR.

    A few thousand distinct dates stand behind the million date values of a national
    report, so each is parsed once and every other value costs one dict lookup.
    """

    def __init__(self) -> None:
        super().__init__({None: FAR})

    def __missing__(self, value: str | date) -> int:
        d = date.fromisoformat(value) if isinstance(value, str) else value
        self[value] = o = d.toordinal()
        return o


_DAYS = DayOrdinals()


def day_ordinals() -> DayOrdinals:
    """The process's table of day ordinals: a report of a few thousand rows then parses no
    date at all (they repeat from one report to the next). Bounded, in case dates run wild."""
    if len(_DAYS) > 100_000:
        _DAYS.clear()
        _DAYS[None] = FAR
    return _DAYS


class unindexed(FunctionElement[Any]):
    """`column`, in a condition the database should not serve from an index.

    SQLite has no statistics on value ranges and always serves `debut <= <end of year>`
    from `ix_decisions_period`, although for the current year nearly every row matches:
    it then reads the table in index order, twice as slow as scanning it. On SQLite this
    renders `+column` (the documented way to keep a term off an index); elsewhere, where
    the planner weighs the range itself, the plain column.
    """

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def _everything(p: Perimeter) -> bool:
    return p.departement is None and p.secteurs is None and p.pial_rne is None


def _eleve_filter(p: Perimeter) -> list[Any]:
    cond: list[Any] = []
    if p.departement is not None:
        cond.append(Eleve.departement == p.departement)
    if p.secteurs is not None:
        cond.append(Eleve.secteur.in_(sorted(p.secteurs)))
    return cond


def _pial_filter(p: Perimeter, year: SchoolYear | None) -> Any:
    """Student schooled in an établissement of the PIAL during the decision (∩ year)."""
    etab_in_pial = select(Etablissement.rne).where(Etablissement.pial_rne == p.pial_rne)
    cond = [
        Scolarisation.eleve_id == Decision.eleve_id,
        Scolarisation.rne.in_(etab_in_pial),
        Scolarisation.debut <= Decision.fin,
        or_(Scolarisation.fin.is_(None), Scolarisation.fin >= Decision.debut),
    ]
    if year is not None:
        cond += [
            Scolarisation.debut <= year.fin,
            or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
        ]
    return exists().where(and_(*cond))


def decision_ids_query(p: Perimeter, year: SchoolYear | None) -> AnySelect:
    q = select(Decision.id)
    return _scoped(q, p, year)


def _scoped(q: AnySelect, p: Perimeter, year: SchoolYear | None) -> AnySelect:
    cond = _eleve_filter(p)
    if cond:
        q = q.join(Eleve, Eleve.id == Decision.eleve_id).where(*cond)
    if year is not None:
        q = q.where(unindexed(Decision.debut) <= year.fin, Decision.fin >= year.debut)
    if p.pial_rne is not None:
        q = q.where(_pial_filter(p, year))
    return q


async def decisions(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> list[DecisionRec]:
    rows = await _fetch(session, _scoped(select(*DECISION_COLS), p, year))
    return [DecisionRec(*r) for r in rows]


def _students_query(p: Perimeter, year: SchoolYear | None) -> AnySelect:
    return _scoped(select(Decision.eleve_id), p, year)


async def decisions_of_students(
    session: AsyncSession, p: Perimeter, year: SchoolYear | None
) -> dict[str, list[DecisionRec]]:
    """Every decision (any year) of the students having a decision in scope."""
    q = select(*DECISION_COLS)
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None:
        q = q.where(Decision.eleve_id.in_(_students_query(p, year)))
    out: dict[str, list[DecisionRec]] = defaultdict(list)
    for r in await _fetch(session, q):
        out[r[1]].append(DecisionRec(*r))
    return out


async def accompanied_decision_ids(session: AsyncSession, p: Perimeter) -> set[str]:
    q = select(AccompagnementDecision.decision_id).distinct()
    if p.departement is not None or p.secteurs is not None or p.pial_rne is not None:
        q = q.where(AccompagnementDecision.decision_id.in_(decision_ids_query(p, None)))
    return set((await session.scalars(q)).all())


# --- lean rows of the coverage, anomalies and PIAL reports ------------------------------


async def decision_rows(
    session: AsyncSession, p: Perimeter, year: SchoolYear, days: DayOrdinals
) -> list[DecisionRow]:
    """The decisions of the perimeter whose period intersects the year."""
    q = select(
        Decision.id,
        Decision.eleve_id,
        Decision.type,
        Decision.heures,
        raw(Decision.debut),
        raw(Decision.fin),
    )
    return [
        (i, e, t, h, days[a], days[b])
        for i, e, t, h, a, b in await _tuples(session, _scoped(q, p, year))
    ]


class CoverageData(NamedTuple):
    decisions: list[DecisionRow]
    scols_by_eleve: dict[str, list[Span]]
    # decision id → (ids of all its accompaniments, (debut, fin, heures) of the non-maintien)
    accs_by_decision: dict[str, tuple[list[str], list[tuple[int, int, float]]]]


async def coverage_data(session: AsyncSession, p: Perimeter, year: SchoolYear) -> CoverageData:
    """Decisions of the perimeter and year, their students' scolarisations and their
    accompaniments (any period), with only the columns coverage reads."""
    days = day_ordinals()
    decisions = await decision_rows(session, p, year, days)

    q_scol = select(Scolarisation.eleve_id, raw(Scolarisation.debut), raw(Scolarisation.fin))
    by_students = p.pial_rne is None and not _everything(p)
    if by_students:
        # Every student of the department or secteurs: a few more than those with a decision
        # this year, reached by one walk of the students' index instead of a subquery.
        q_scol = q_scol.join(Eleve, Eleve.id == Scolarisation.eleve_id).where(*_eleve_filter(p))
    elif not _everything(p):
        q_scol = q_scol.where(Scolarisation.eleve_id.in_(_students_query(p, year)))
    scols: dict[str, list[Span]] = {}
    for e, a, b in await _tuples(session, q_scol):
        span = (days[a], days[b])
        got = scols.get(e)
        if got is None:
            scols[e] = [span]
        else:
            got.append(span)

    q_acc = select(
        AccompagnementDecision.decision_id,
        Accompagnement.id,
        raw(Accompagnement.debut),
        raw(Accompagnement.fin),
        Accompagnement.heures,
        Accompagnement.maintien,
    ).join(Accompagnement, Accompagnement.id == AccompagnementDecision.accompagnement_id)
    if by_students:
        q_acc = _scoped(
            q_acc.join(Decision, Decision.id == AccompagnementDecision.decision_id), p, year
        )
    elif not _everything(p):
        q_acc = q_acc.where(AccompagnementDecision.decision_id.in_(decision_ids_query(p, year)))
    # Nationally every link: filtering on the decision's year would search each link's
    # decision only to drop the links of other years' decisions, which are grouped below
    # but never looked up.
    accs: dict[str, tuple[list[str], list[tuple[int, int, float]]]] = {}
    for d, i, a, b, h, m in await _tuples(session, q_acc):
        entry = accs.get(d)
        if entry is None:
            accs[d] = entry = ([], [])
        entry[0].append(i)
        if not m:  # a maintien accompaniment never provides (domain 3.5)
            entry[1].append((days[a], days[b], h))
    return CoverageData(decisions, scols, accs)


# --- anomalies -------------------------------------------------------------------------


def _acc_scope(p: Perimeter, year: SchoolYear, acc: Any = Accompagnement) -> list[Any]:
    """Accompaniments (`acc`: the entity or an alias) of the year linked to at least one
    decision of the perimeter."""
    cond: list[Any] = [acc.debut <= year.fin, acc.fin >= year.debut]
    if p.departement is not None or p.secteurs is not None:
        linked = (
            select(AccompagnementDecision.accompagnement_id)
            .join(Decision, Decision.id == AccompagnementDecision.decision_id)
            .join(Eleve, Eleve.id == Decision.eleve_id)
            .where(*_eleve_filter(p))
        )
        cond.append(acc.id.in_(linked))
    if p.pial_rne is not None:
        cond.append(
            acc.rne.in_(select(Etablissement.rne).where(Etablissement.pial_rne == p.pial_rne))
        )
    return cond


class AnomalyData(NamedTuple):
    """The arguments of `anomalies.check`, in its order."""

    candidates: list[AnomalyAccRow]
    loads_by_mission: dict[str, tuple[float, list[tuple[str, int, int, float]]]]
    year: Span
    checked: set[str] | None
    inactive_aesh: set[str]
    closed_dossiers: dict[str, str]


async def anomaly_data(session: AsyncSession, p: Perimeter, year: SchoolYear) -> AnomalyData:
    """The accompaniments of the perimeter and year that may have an anomaly, with their
    decisions, and what their checks compare them with (domain 3.8).

    Nearly every accompaniment has none: the database, not Python, looks for the few that
    may (one pass of comparisons and index lookups), and Python only confirms them and
    words their details. The overloaded-mission check likewise reads only the missions the
    database finds loaded beyond their hours on some day (`_mission_loads`).
    """
    days = day_ordinals()
    everything = _everything(p)
    inner = aliased(Accompagnement)
    in_scope = select(inner.id).where(*_acc_scope(p, year, inner))
    scope_missions = select(inner.mission_id).where(*_acc_scope(p, year, inner))

    inactive = select(Aesh.id).where(Aesh.actif.is_(False))
    closed_students = select(Eleve.id).where(Eleve.dossier_etat.in_(anomaly_rules.CLOSED))
    q_aesh = inactive
    q_closed = closed_students.add_columns(Eleve.dossier_etat)
    if not everything:
        q_aesh = q_aesh.where(
            Aesh.id.in_(select(Mission.aesh_id).where(Mission.id.in_(scope_missions)))
        )
        students = (
            select(Decision.eleve_id)
            .join(AccompagnementDecision, AccompagnementDecision.decision_id == Decision.id)
            .where(AccompagnementDecision.accompagnement_id.in_(in_scope))
        )
        q_closed = q_closed.where(Eleve.id.in_(students))

    # Rows (accompaniment, decision, scolarisation of the decision's student in the
    # accompaniment's établissement) where some check may fail, by accompaniment then
    # decision: the rows of one accompaniment come together and name its decisions in a
    # stable order. Each condition is the exact negation of "this check passes", except
    # type 4's, which keeps the rows no single scolarisation covers (the union of several
    # may: Python decides) and type 6's, which leaves the tolerance to Python.
    covering = aliased(Scolarisation)
    may_fail = or_(
        Accompagnement.debut < Mission.debut,
        Accompagnement.fin > Mission.fin,
        Accompagnement.heures > Mission.heures,
        Mission.actif.is_(False),
        Mission.aesh_id.in_(inactive),
        Accompagnement.debut < Decision.debut,
        and_(Accompagnement.maintien.is_(False), Accompagnement.fin > Decision.fin),
        Decision.eleve_id.in_(closed_students),
        and_(
            Decision.id.is_not(None),
            ~exists().where(
                covering.eleve_id == Decision.eleve_id,
                covering.rne == Accompagnement.rne,
                covering.debut <= Accompagnement.debut,
                or_(covering.fin.is_(None), covering.fin >= Accompagnement.fin),
            ),
        ),
    )
    q_accs = (
        select(
            Accompagnement.id,
            Accompagnement.mission_id,
            Accompagnement.rne,
            raw(Accompagnement.debut),
            raw(Accompagnement.fin),
            Accompagnement.heures,
            Accompagnement.maintien,
            Mission.id,
            raw(Mission.debut),
            raw(Mission.fin),
            Mission.heures,
            Mission.actif,
            Mission.aesh_id,
            Decision.id,
            Decision.eleve_id,
            raw(Decision.debut),
            raw(Decision.fin),
            raw(Scolarisation.debut),
            raw(Scolarisation.fin),
        )
        .select_from(Accompagnement)
        .outerjoin(Mission, Mission.id == Accompagnement.mission_id)
        .outerjoin(
            AccompagnementDecision,
            AccompagnementDecision.accompagnement_id == Accompagnement.id,
        )
        .outerjoin(Decision, Decision.id == AccompagnementDecision.decision_id)
        .outerjoin(
            Scolarisation,
            and_(
                Scolarisation.eleve_id == Decision.eleve_id,
                Scolarisation.rne == Accompagnement.rne,
            ),
        )
        .where(*_acc_scope(p, year), may_fail)
        .order_by(Accompagnement.id, AccompagnementDecision.decision_id)
    )
    # The longest search, in the database: the other reads and their grouping meanwhile.
    # Nationally it goes through every accompaniment of the year (about 2 s): in two
    # halves, split at the median id of the year's accompaniments. A perimeter's search is
    # a small fraction of that: not worth two more statements and a second connection.
    split = (Accompagnement.id, _acc_scope(p, year)) if everything else None
    searched = await _search_aside(session, q_accs, split)
    try:
        inactive_aesh = {r[0] for r in await _tuples(session, q_aesh)}
        closed = {i: etat for i, etat in await _tuples(session, q_closed)}
        loads, checked = await _mission_loads(session, p, days, scope_missions, in_scope)
        may_fail_rows = None if searched is None else await searched
        if may_fail_rows is None:  # not started aside, or no connection was at hand
            may_fail_rows = await _tuples(session, q_accs)
    except BaseException:
        if searched is not None:
            await _forget(searched)
        raise
    candidates: list[AnomalyAccRow] = []
    current = current_decision = None
    decs: list[tuple[str, str, int, int, list[Span]]] = []
    spans: list[Span] = []
    for row in may_fail_rows:
        aid, mid, rne, a, b, h, maintien, m_id, ma, mb, mh, m_actif, aesh = row[:13]
        did, eid, da, db, sa, sb = row[13:]
        if aid != current:
            current = aid
            current_decision = None
            decs = []
            mission = None if m_id is None else (days[ma], days[mb], mh, m_actif, aesh)
            candidates.append((aid, mid, rne, days[a], days[b], h, maintien, mission, decs))
        if did is not None and did != current_decision:
            current_decision = did
            spans = []
            decs.append((did, eid, days[da], days[db], spans))
        if sa is not None:
            spans.append((days[sa], days[sb]))

    span = (year.debut.toordinal(), year.fin.toordinal())
    return AnomalyData(candidates, loads, span, checked, inactive_aesh, closed)


async def _mission_loads(
    session: AsyncSession,
    p: Perimeter,
    days: DayOrdinals,
    scope_missions: AnySelect,
    in_scope: AnySelect,
) -> tuple[dict[str, tuple[float, list[tuple[str, int, int, float]]]], set[str] | None]:
    """For anomaly 6: the missions that may be overloaded, with their hours and all their
    accompaniments, and the ids of the accompaniments checked (None: all of the year)."""
    # Type 6 compares the accompaniments checked with every accompaniment of their mission,
    # of any period and any perimeter. A mission's load only rises on a day one of them
    # starts, so only a mission carrying more than its hours on such a day can be
    # overloaded: the database finds those few (by the index on mission and period, a
    # handful of rows per mission) and Python reads and checks their accompaniments only.
    starting, present = aliased(Accompagnement), aliased(Accompagnement)
    load_on_start = (
        select(func.sum(present.heures))
        .where(
            present.mission_id == starting.mission_id,
            present.debut <= starting.debut,
            present.fin >= starting.debut,
        )
        .having(func.count() > 1)  # one alone above its mission's hours is checked apart
        .scalar_subquery()
    )
    overloaded = select(Mission.id).where(
        exists().where(
            starting.mission_id == Mission.id,
            load_on_start > Mission.heures + anomaly_rules.EPS / 2,
        )
    )
    checked: set[str] | None = None  # nationally: every accompaniment of the year
    if not _everything(p):
        overloaded = overloaded.where(Mission.id.in_(scope_missions))
        checked = {r[0] for r in await _tuples(session, in_scope)}
    q_load = (
        select(
            Accompagnement.mission_id,
            Mission.heures,
            Accompagnement.id,
            raw(Accompagnement.debut),
            raw(Accompagnement.fin),
            Accompagnement.heures,
        )
        .join(Mission, Mission.id == Accompagnement.mission_id)
        .where(Accompagnement.mission_id.in_(overloaded))
    )
    loads: dict[str, tuple[float, list[tuple[str, int, int, float]]]] = {}
    for mid, mh, aid, a, b, h in await _tuples(session, q_load):
        got = loads.get(mid)
        if got is None:
            loads[mid] = got = (mh, [])
        got[1].append((aid, days[a], days[b], h))
    return loads, checked


# --- PIAL --------------------------------------------------------------------------------


async def pials(session: AsyncSession, p: Perimeter) -> list[tuple[str, str]]:
    """(rne, departement) of the PIAL in the perimeter, sorted."""
    q = select(Pial.rne, Pial.departement).order_by(Pial.rne)
    if p.departement is not None:
        q = q.where(Pial.departement == p.departement)
    if p.pial_rne is not None:
        q = q.where(Pial.rne == p.pial_rne)
    return [(r[0], r[1]) for r in await _tuples(session, q)]


class PialData(NamedTuple):
    decisions: list[DecisionRow]
    # eleve → (pial, debut, fin) of the scolarisations in an établissement of a PIAL
    pial_spans_by_eleve: dict[str, list[tuple[str, int, int]]]
    affectations: list[tuple[str, str, float | None]]  # (mission_id, pial_rne, heures)
    missions: dict[str, tuple[int, int, float, bool, str]]  # (debut, fin, heures, actif, nature)


async def pial_data(
    session: AsyncSession, pial_rnes: Sequence[str], year: SchoolYear, p: Perimeter
) -> PialData:
    """What `pial.compute` reads for the PIAL `pial_rnes` of the perimeter over the year."""
    days = day_ordinals()
    decisions = await decision_rows(session, p, year, days)

    # Scolarisations reach their PIAL through their établissement (mapped here: a join
    # would search the établissement of every row); days outside the year never count.
    q_etab = select(Etablissement.rne, Etablissement.pial_rne).where(
        Etablissement.pial_rne.is_not(None)
    )
    if p.departement is not None:
        q_etab = q_etab.where(Etablissement.departement == p.departement)
    pial_of = {rne: pial for rne, pial in await _tuples(session, q_etab)}
    q_scol = select(
        Scolarisation.eleve_id,
        Scolarisation.rne,
        raw(Scolarisation.debut),
        raw(Scolarisation.fin),
    ).where(
        Scolarisation.debut <= year.fin,
        or_(Scolarisation.fin.is_(None), Scolarisation.fin >= year.debut),
    )
    if not _everything(p):
        q_scol = q_scol.where(Scolarisation.eleve_id.in_(_students_query(p, year)))
    spans: dict[str, list[tuple[str, int, int]]] = {}
    for eid, rne, a, b in await _tuples(session, q_scol):
        pial = pial_of.get(rne)
        if pial is None:
            continue
        row = (pial, days[a], days[b])
        got = spans.get(eid)
        if got is None:
            spans[eid] = [row]
        else:
            got.append(row)

    # Each affectation of the year with its mission, in one read.
    q = (
        select(
            Affectation.mission_id,
            Affectation.pial_rne,
            Affectation.heures,
            raw(Mission.debut),
            raw(Mission.fin),
            Mission.heures,
            Mission.actif,
            Mission.nature,
        )
        .join(Mission, Mission.id == Affectation.mission_id)
        .where(Affectation.annee == year.label)
    )
    if p.departement is not None:
        q = q.where(
            Affectation.pial_rne.in_(select(Pial.rne).where(Pial.departement == p.departement))
        )
    if p.pial_rne is not None:
        q = q.where(Affectation.pial_rne == p.pial_rne)
    wanted = set(pial_rnes)
    affs: list[tuple[str, str, float | None]] = []
    missions: dict[str, tuple[int, int, float, bool, str]] = {}
    for m, pial, h, a, b, mh, actif, nature in await _tuples(session, q):
        if pial in wanted:
            affs.append((m, pial, h))
        if m not in missions:
            missions[m] = (days[a], days[b], mh, actif, nature)
    return PialData(decisions, spans, affs, missions)
