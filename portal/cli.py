"""Core commands: set-up, demo data and accounts. They call the same services as the web."""
import random

import click
from flask import current_app, g
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, inspect, select

from portal import demo
from portal.auth.models import User
from portal.commit import committed
from portal.extensions import db
from portal.tenancy import unscoped


def init_app(app) -> None:
    app.cli.add_command(demo_data)
    app.cli.add_command(setup)
    app.cli.add_command(accounts)
    app.cli.add_command(grant_app_role)


def _database_is_empty() -> bool:
    if "users" not in inspect(db.engine).get_table_names():
        return True
    with unscoped("count accounts to decide whether demo data is needed"):
        return db.session.scalar(select(func.count(User.id))) == 0


def load_demo(seed: int = 2026, *, in_steps: bool = False) -> None:
    """Run every area's demo loader; `in_steps`: commit after each (demo.in_steps)."""
    ctx: dict = {"rng": random.Random(seed)}  # noqa: S311 - reproducible demo data, no secrets
    g._audit_actor = None
    with unscoped("demo data builds the whole network"), demo.in_steps(in_steps), committed():
        for loader in demo.loaders():
            click.echo(f"  demo: {loader.name}")
            loader.load(ctx)
            demo.checkpoint()


def print_accounts() -> None:
    click.echo("\nDemo accounts (password for all: %s):" % demo.DEMO_PASSWORD)
    for role, email, _password in demo.ACCOUNTS:
        click.echo(f"  {role:<18} {email}")


@click.command("demo-data")
@click.option("--seed", default=2026, show_default=True)
@click.option("--force", is_flag=True, help="Load even if the database already has accounts.")
@with_appcontext
def demo_data(seed: int, force: bool):
    """Build a realistic demo network and print the demo accounts."""
    empty = _database_is_empty()
    if not force and not empty:
        raise click.ClickException("the database already has data; use --force to add demo data")
    # Beside existing data people may be working: commit step by step (demo.in_steps).
    load_demo(seed, in_steps=not empty)
    print_accounts()


@click.command("accounts")
@with_appcontext
def accounts():
    """Print the demo accounts."""
    print_accounts()


@click.command("setup")
@with_appcontext
def setup():
    """Migrate the database and load demo data when it is empty (used by `make run`)."""
    upgrade(directory=current_app.extensions["migrate"].directory, revision="heads")
    if _database_is_empty():
        click.echo("Empty database: loading demo data…")
        load_demo()
    else:
        click.echo("Database has data: demo data not loaded.")


@click.command("grant-app-role")
@click.argument("role")
@with_appcontext
def grant_app_role(role: str):
    """PostgreSQL: give the application's login ROLE its table rights (run as the owner)."""
    from sqlalchemy import create_engine

    from portal.config import normalize_database_url
    from portal.dbsecurity import grant_app_role as grant

    url = current_app.config.get("MIGRATION_DATABASE_URL")
    engine = create_engine(normalize_database_url(url)) if url else db.engine
    if engine.dialect.name != "postgresql":
        raise click.ClickException("only PostgreSQL has roles to grant")
    with engine.begin() as connection:
        grant(connection, role)
    click.echo(f"granted table rights to {role}")
