"""Synthetic networks for benchmarks and scale tests: each area registers a bulk generator and
`flask --app wsgi synth-network` runs them in order, fast and reproducibly from a seed.

Rows go in big batches: on SQLite a Core ``insert()``, compiled once per table, run as an
executemany over plain tuples (each value converted as its column type would bind it, without
SQLAlchemy's per-row work); on PostgreSQL ``COPY``.
On SQLite the command commits a few times a second (at a moment when every id handed out
has its row: see `BulkWriter.commit_if_due`), so that a portal serving meanwhile waits for
its one write lock a fraction of a second, not for the whole build; on PostgreSQL, which
locks only the new rows, it commits once.
Row-level security refuses ``COPY FROM`` into its tables for any role it binds ("COPY FROM not
supported with row-level security"), so on PostgreSQL the rows are copied into a temporary
staging table and moved with ``INSERT … SELECT``: the application role writes them, and the
policies check every row against the scope of the transaction (``unscoped``: the whole network).
"""
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Callable

import click
import sqlalchemy as sa
from flask import current_app, g
from flask.cli import with_appcontext
from sqlalchemy import JSON, Date, func, insert, select, text
from sqlalchemy.types import TypeDecorator

from portal import clock
from portal.extensions import db, let_writers_in, write_lock
from portal.tenancy import unscoped

# Seconds between the build's commits on SQLite (the longest a sign-in waits for the lock).
COMMIT_EVERY = 0.3
# The password of every synthetic account (the network exists for benchmarks and tests).
SYNTH_PASSWORD = "synth-portal-2026"  # noqa: S105 - published, like the demo password


@dataclass(frozen=True)
class Generator:
    name: str
    build: Callable  # build(net: Network) -> None: bulk rows, inside the data transaction
    order: int
    # after_commit(net) -> None: work that runs as background jobs once the rows are committed
    after_commit: Callable | None = None


_generators: list[Generator] = []


def register(name: str, build: Callable, order: int, after_commit: Callable | None = None
             ) -> None:
    if all(gen.name != name for gen in _generators):
        _generators.append(Generator(name, build, order, after_commit))


def generators() -> list[Generator]:
    return sorted(_generators, key=lambda gen: gen.order)


@dataclass(frozen=True)
class Account:
    """A synthetic account, as the audit log names its actor."""

    id: int
    email: str
    role: str


@dataclass(frozen=True)
class Sizes:
    agencies: int
    orders: int
    engineers: int
    quarters: int = 4


def spread(total: int, weights: list[float]) -> list[int]:
    """`total` split along `weights` (largest remainders), so the parts add up exactly."""
    whole = sum(weights) or 1.0
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: parts[i] - exact[i])[:total - sum(parts)]:
        parts[i] += 1
    return parts


# --- writing rows in bulk -----------------------------------------------------------------------


class BulkWriter:
    """Rows into tables in big batches, with ids chosen beforehand so that children can point
    at their parents without reading anything back."""

    def __init__(self, connection, batch: int = 20000, commit_every: float | None = None):
        self.connection = connection
        self.dialect = connection.dialect
        self.batch = batch
        self.counts: Counter = Counter()
        self.commit_every = commit_every  # seconds between commits (SQLite), or one commit
        self.commits = 0
        self._since = time.monotonic()
        self._added_top: dict = {}  # the highest id of each table's rows added so far
        self._buffers: dict = {}
        self._next_id: dict = {}
        self._pools: dict = {}
        self._blocks: dict = {}
        self._plans: dict = {}
        self._staged: set = set()

    @property
    def is_postgresql(self) -> bool:
        return self.dialect.name == "postgresql"

    def ids(self, table, count: int) -> list[int]:
        """`count` fresh primary keys of `table` (a sequence's values on PostgreSQL)."""
        if count <= 0:
            return []
        if self.is_postgresql:
            pool, start = self._pools.get(table.name, ([], 0))
            if len(pool) - start < count:
                # Sequence values in growing blocks: few round trips, few values wasted.
                block = self._blocks[table.name] = min(self._blocks.get(table.name, 32) * 4,
                                                       self.batch)
                pool = pool[start:] + list(self.connection.execute(
                    text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) "
                         "FROM generate_series(1, :n)"),
                    {"t": table.name, "n": max(count - len(pool) + start, block)}).scalars())
                start = 0
            self._pools[table.name] = (pool, start + count)
            return pool[start:start + count]
        if table.name not in self._next_id:
            top = self.connection.execute(select(func.max(table.c.id))).scalar()
            self._next_id[table.name] = (top or 0) + 1
        first = self._next_id[table.name]
        self._next_id[table.name] = first + count
        return list(range(first, first + count))

    def add(self, table, row: dict) -> None:
        buffer = self._buffers.setdefault(table.name, (table, []))[1]
        buffer.append(row)
        if row.get("id") is not None and row["id"] > self._added_top.get(table.name, 0):
            self._added_top[table.name] = row["id"]
        if len(buffer) >= self.batch:
            self.flush()
        if self.commit_every is not None and time.monotonic() - self._since > self.commit_every:
            self.commit_if_due()

    def commit_if_due(self) -> bool:
        """Write the buffers and commit, when every id handed out has its row: SQLite numbers
        a row another connection inserts max(id) + 1, above every id reserved here, and the
        next ids are read afresh in the next transaction (which holds the write lock from its
        start: `write_lock`). Returns whether it committed."""
        if any(self._added_top.get(name, 0) != following - 1
               for name, following in self._next_id.items()):
            return False  # looked at again at the next row or reservation
        self.flush()
        db.session.commit()
        let_writers_in()
        self.connection = db.session.connection()
        _tune(self.connection)
        self._next_id.clear()
        self._added_top.clear()
        self._since = time.monotonic()
        self.commits += 1
        return True

    def add_all(self, table, rows) -> None:
        for row in rows:
            self.add(table, row)

    def flush(self) -> None:
        """Write every buffered row, parents before children (foreign keys are immediate)."""
        order = {t.name: n for n, t in enumerate(db.metadata.sorted_tables)}
        for name in sorted(self._buffers, key=lambda name: order.get(name, len(order))):
            self._flush(name)

    # --- internals ---

    def _plan(self, table) -> "_TablePlan":
        if table.name not in self._plans:
            self._plans[table.name] = _TablePlan(table, self.dialect)
        return self._plans[table.name]

    def _flush(self, name: str) -> None:
        table, rows = self._buffers.pop(name, (None, []))
        if not rows:
            return
        missing = [row for row in rows if row.get("id") is None]
        if missing and "id" in table.c:
            for row, new_id in zip(missing, self.ids(table, len(missing)), strict=True):
                row["id"] = new_id
            self._added_top[name] = max(self._added_top.get(name, 0), missing[-1]["id"])
        plan = self._plan(table)
        if self.is_postgresql:
            self._copy(plan, rows)
        else:
            self.connection.exec_driver_sql(plan.sql, plan.tuples(rows))
        self.counts[name] += len(rows)

    def _copy(self, plan: "_TablePlan", rows: list[dict]) -> None:
        """COPY into a temporary staging table, then INSERT … SELECT under row-level security."""
        table = plan.table
        stage = f"synth_stage_{table.name}"
        names = ", ".join(f'"{c.name}"' for c in table.columns)
        raw = self.connection.connection.driver_connection
        with raw.cursor() as cursor:
            if stage not in self._staged:
                cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" '
                               f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP')
                self._staged.add(stage)
            with cursor.copy(f'COPY "{stage}" ({names}) FROM STDIN') as copy:
                for values in plan.tuples(rows):
                    copy.write_row(values)
            cursor.execute(f'INSERT INTO "{table.name}" ({names}) '  # noqa: S608 - schema names
                           f'SELECT {names} FROM "{stage}"')
            cursor.execute(f'TRUNCATE "{stage}"')


def sqlite_datetime(value: datetime) -> str:
    """An aware datetime as SQLAlchemy stores UTCDateTime on SQLite ("2026-11-30
    08:36:43.000000", in UTC), without its per-value formatting machinery."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat(" ")
    return text + ".000000" if len(text) == 19 else text


def _scaled(places: int) -> Callable:
    def convert(value) -> int:
        if isinstance(value, float):
            raise TypeError("an exact decimal is never a float")
        scaled = Decimal(value).scaleb(places)
        whole = int(scaled)
        if whole != scaled:
            raise ValueError(f"{value} has more than {places} decimal places")
        return whole
    return convert


class _TablePlan:
    """How one table's rows become the tuples its INSERT (SQLite) or COPY (PostgreSQL) takes:
    the columns in order, each with its default and the conversion its type would make."""

    def __init__(self, table, dialect):
        from portal.models import ExactDecimal, UTCDateTime

        self.table = table
        postgresql = dialect.name == "postgresql"
        self.columns = []
        for column in table.columns:
            default = column.default
            if default is None:
                value = None
            elif default.is_callable:
                value = default.arg(None)  # once per table: one "now" for every row
            else:
                value = default.arg
            kind, convert = column.type, None
            if isinstance(kind, ExactDecimal):
                convert = _scaled(kind.places)
            elif isinstance(kind, UTCDateTime):
                convert = None if postgresql else sqlite_datetime
            elif isinstance(kind, Date) and not postgresql:
                convert = date.isoformat
            elif isinstance(kind, JSON):
                convert = (partial(json.dumps, ensure_ascii=False) if postgresql
                           else json.dumps)
            elif isinstance(kind, TypeDecorator):
                convert = partial(kind.process_bind_param, dialect=dialect)
            self.columns.append((column.key, value, convert))
        compiled = insert(table).compile(dialect=dialect,
                                         column_keys=[c.key for c in table.columns])
        self.sql = str(compiled)
        order = {key: n for n, (key, _v, _c) in enumerate(self.columns)}
        if compiled.positiontup is not None:  # keep the statement's own parameter order
            self.columns.sort(key=lambda c: compiled.positiontup.index(c[0])
                              if c[0] in compiled.positiontup else order[c[0]])

    def tuples(self, rows: list[dict]) -> list[tuple]:
        columns = self.columns
        out = []
        for row in rows:
            values = []
            for key, default, convert in columns:
                value = row.get(key, default)
                if convert is not None and value is not None:
                    value = convert(value)
                values.append(value)
            out.append(tuple(values))
        return out


# --- the network being built ----------------------------------------------------------------------


class Step:
    """One generator's progress: a click progress bar in the CLI, a callback elsewhere."""

    def __init__(self, net: "Network", label: str, total: int):
        self.net, self.label, self.total, self.done = net, label, max(total, 1), 0

    def advance(self, count: int = 1) -> None:
        self.done = min(self.done + count, self.total)
        self.net.report(self.label, self.done, self.total)


@dataclass
class Network:
    """What the generators share: sizes, the seed, the clock, the writer and their hand-offs."""

    sizes: Sizes
    seed: int
    writer: BulkWriter
    tag: str
    now: datetime
    today: date
    progress: Callable | None = None  # progress(label, done, total)
    data: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def rng(self, name: str) -> random.Random:
        """A random stream per area: one area's draws never shift another's."""
        return random.Random(f"{self.seed}:{name}")  # noqa: S311 - reproducible test data

    def step(self, label: str, total: int) -> Step:
        return Step(self, label, total)

    def report(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    def add(self, model, row: dict) -> None:
        self.writer.add(model.__table__, row)

    def ids(self, model, count: int) -> list[int]:
        writer = self.writer
        if writer.commit_every is not None and time.monotonic() - writer._since > \
                writer.commit_every:
            writer.commit_if_due()  # before a new reservation: the last ones have their rows
        return writer.ids(model.__table__, count)

    def audit(self, action: str, object_type: str, object_id, *, at: datetime, actor=None,
              agency_id: int | None = None, before: dict | None = None,
              after: dict | None = None) -> None:
        """One audit entry, as the service that made the change would have written it;
        `actor` is an Account (or None for the system)."""
        from portal.audit.models import AuditEntry

        self.add(AuditEntry, {
            "at": at, "actor_id": actor.id if actor else None,
            "actor_email": actor.email if actor else None,
            "actor_role": actor.role if actor else None, "agency_id": agency_id,
            "action": action, "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "before": before, "after": after, "reason": None, "ip": None, "request_id": None})

    @property
    def quarters(self) -> list:
        """The last `sizes.quarters` quarters that have ended, oldest first."""
        from portal.periods import Period

        ended = Period.of_day(self.today).previous()
        return ended.last(self.sizes.quarters) if self.sizes.quarters else []

    @property
    def history_start(self) -> date:
        """The first day of work orders: the oldest evaluated quarter (or a year back)."""
        quarters = self.quarters
        if quarters:
            return quarters[0].first_day
        return self.today - timedelta(days=365)


def _free_tag() -> str:
    """A short prefix no earlier synthetic network in this database used ("Y1", "Y2", …)."""
    regions = sa.table("regions", sa.column("code"))  # tenants' table; the core imports no area
    taken = set(db.session.scalars(select(regions.c.code).where(regions.c.code.like("Y%-%"))))
    n = 1
    while any(code.startswith(f"Y{n}-") for code in taken):
        n += 1
    return f"Y{n}"


def build_network(sizes: Sizes, seed: int = 2026, *, progress: Callable | None = None,
                  commit: bool = True, run_jobs: bool = True,
                  now: datetime | None = None) -> Network:
    """Build a synthetic network with every registered generator; returns what was built.

    Runs inside ``unscoped`` (the whole network is written). With `commit` the rows are
    committed before the jobs (the quarters' computation) run; tests pass ``commit=False``
    inside their own transaction (the jobs then commit savepoints only). The same seed and
    `now` give the same network.
    """
    g._audit_actor = None
    with unscoped("a synthetic network is written across every agency"):
        # The build's transactions hold SQLite's write lock from their start: the ids read
        # at their start stay free until their rows are in.
        with write_lock():
            net = _build(sizes, seed, progress, commit, now)
        if run_jobs:
            for gen in generators():
                if gen.after_commit is not None:
                    started = time.monotonic()
                    gen.after_commit(net)
                    net.timings[f"{gen.name} jobs"] = round(time.monotonic() - started, 2)
    return net


def _build(sizes: Sizes, seed: int, progress, commit: bool, now: datetime | None) -> Network:
    connection = db.session.connection()
    _tune(connection)
    now = (now or clock.now()).replace(microsecond=0)
    from portal.clock import local_day

    steps = commit and connection.dialect.name == "sqlite"
    writer = BulkWriter(connection, commit_every=COMMIT_EVERY if steps else None)
    net = Network(sizes=sizes, seed=seed, writer=writer, tag=_free_tag(), now=now,
                  today=local_day(now), progress=progress)
    for gen in generators():
        started = time.monotonic()
        gen.build(net)
        net.writer.flush()
        net.timings[gen.name] = round(time.monotonic() - started, 2)
    if commit:
        started = time.monotonic()
        db.session.commit()
        net.timings["commit"] = round(time.monotonic() - started, 2)
    else:
        db.session.flush()
    return net


def _tune(connection) -> None:
    """A big page cache for the writing connection (SQLite); nothing to tune on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA cache_size=-1000000")


def analyze() -> float:
    """Refresh the planner's statistics after a bulk load; returns the seconds it took.

    On PostgreSQL only a table's owner may ANALYZE it: through MIGRATION_DATABASE_URL when set
    (else autovacuum catches up on its own).
    """
    started = time.monotonic()
    engine = db.engine
    if engine.dialect.name == "postgresql":
        owner = current_app.config.get("MIGRATION_DATABASE_URL")
        if not owner:
            return 0.0
        from sqlalchemy import create_engine

        from portal.config import normalize_database_url

        engine = create_engine(normalize_database_url(owner), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
        engine.dispose()
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return round(time.monotonic() - started, 2)


# --- the command ---------------------------------------------------------------------------------


class _Bars:
    """One click progress bar per step, closed when the next step starts."""

    def __init__(self):
        self.label, self.bar, self.seen, self.drawn = None, None, 0, 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self.label:
            self.close()
            self.label, self.seen = label, 0
            self.bar = click.progressbar(length=max(total, 1), label=f"  {label:<28}",
                                         show_pos=True, show_eta=True)
            self.bar.__enter__()
        now = time.monotonic()
        if done < total and now - self.drawn < 0.2:  # a few redraws a second are enough
            return
        self.drawn = now
        self.bar.length = max(total, 1)
        self.bar.update(done - self.seen)
        self.seen = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("synth-network")
@click.option("--agencies", default=200, show_default=True, type=click.IntRange(1, 100000))
@click.option("--orders", default=200000, show_default=True, type=click.IntRange(0, 10**8))
@click.option("--engineers", default=None, type=click.IntRange(1, 10**7),
              help="Engineers in all (default: 10 per agency).")
@click.option("--quarters", default=4, show_default=True, type=click.IntRange(0, 8),
              help="Ended quarters of history, each computed by the evaluation job.")
@click.option("--seed", default=2026, show_default=True)
@with_appcontext
def synth_network(agencies: int, orders: int, engineers: int | None, quarters: int, seed: int):
    """Build a large synthetic network fast (for benchmarks), reproducible from SEED."""
    sizes = Sizes(agencies=agencies, orders=orders, engineers=engineers or agencies * 10,
                  quarters=quarters)
    click.echo(f"Synthetic network on {db.engine.dialect.name}: {sizes}")
    bars = _Bars()
    started = time.monotonic()
    try:
        net = build_network(sizes, seed, progress=bars)
    finally:
        bars.close()
    stats = analyze()
    total = time.monotonic() - started
    for name, seconds in net.timings.items():
        click.echo(f"  {name:<28} {seconds:8.2f} s")
    click.echo(f"  {'analyze':<28} {stats:8.2f} s")
    rows = sum(net.writer.counts.values())
    click.echo(f"{rows:,} rows in {total:.1f} s ({rows / max(total, 0.001):,.0f} rows/s, "
               f"{net.writer.commits + 1} commits); "
               f"network {net.tag}; accounts use the password {SYNTH_PASSWORD!r}, e.g. "
               f"admin@{net.tag.lower()}.synth")
    failed = net.data.get("failed_jobs", [])
    for line in failed:
        click.echo(f"FAILED {line}", err=True)
    if failed:
        raise click.ClickException(f"the network is written, but {len(failed)} jobs failed")


def init_app(app) -> None:
    app.cli.add_command(synth_network)
