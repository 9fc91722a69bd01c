"""The migrations: they create what the models declare, and they go down and up again."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, create_engine

from portal.config import normalize_database_url
from portal.extensions import db
from tests.realapp import scratch_database

PROJECT = Path(__file__).resolve().parents[2]


def _differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = compare_metadata(context, db.metadata)
    if connection.dialect.name == "sqlite":
        # SQLite's INTEGER is 64-bit already: migration evl0002 widens columns on PostgreSQL
        # only, so SQLite still reports the declared BIGINT as INTEGER.
        found = [d for d in found if not (isinstance(d, list) and d[0][0] == "modify_type"
                                          and isinstance(d[0][-1], BigInteger))]
    return found


def test_the_models_match_the_migrated_database(app):
    """Every table, column, type, index and constraint the models declare is what
    `db upgrade heads` built (a model changed without its migration fails here)."""
    with app.app_context(), db.engine.connect() as connection:
        assert _differences(connection) == []


@pytest.fixture
def empty_database(tmp_path):
    with scratch_database(tmp_path, "migrations") as url:
        yield url


def test_every_migration_goes_down_and_up_again(empty_database, tmp_path):
    """upgrade heads → downgrade base → upgrade heads on an empty database: each downgrade
    undoes its upgrade (tables, indexes, row-level security policies, triggers)."""
    env = {**os.environ, "DATABASE_URL": empty_database, "PORTAL_INSTANCE_PATH": str(tmp_path)}
    env.pop("MIGRATION_DATABASE_URL", None)
    for args in (("upgrade", "heads"), ("downgrade", "base"), ("upgrade", "heads")):
        done = subprocess.run(  # noqa: S603 - the portal's own command
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=PROJECT,
            env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    engine = create_engine(normalize_database_url(empty_database))
    try:
        with engine.connect() as connection:
            assert _differences(connection) == []
    finally:
        engine.dispose()
