"""Service commands: bulk imports from the command line, through the same services as the web.

    flask --app wsgi service import-orders SH-C01 orders.xlsx [--good-only]
    flask --app wsgi service import-catalog part parts.csv [--good-only]
"""
from pathlib import Path

import click
from flask import g
from flask.cli import AppGroup
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from portal.commit import committed
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import agency_scope, scoped, unscoped
from service import imports, tabular

service_cli = AppGroup("service", help="Work orders and parts: bulk imports.")


def init_app(app) -> None:
    app.cli.add_command(service_cli)


def _read(path: Path, columns) -> list:
    with path.open("rb") as handle:
        return tabular.read_table(FileStorage(handle, filename=path.name), columns)


def _run(importer, path: Path, columns, *args, good_only: bool) -> None:
    """Read the file and import it as the system (no signed-in person); one commit."""
    try:
        with committed():
            report = importer(*args, _read(path, columns), good_only=good_only,
                              acting_user=None)
    except DomainError as error:
        raise click.ClickException(error.message) from error
    for row in report.errors:
        click.echo(f"  row {row.number} {row.key}: {'; '.join(row.messages)}", err=True)
    click.echo(f"created {report.count('created')}, updated {report.count('updated')}, "
               f"skipped {report.count('skipped') + report.count('unchanged')}, "
               f"errors {len(report.errors)}; " + ("written" if report.applied
                                                   else "nothing written"))
    if report.errors and not report.applied:
        raise click.exceptions.Exit(1)


@service_cli.command("import-orders")
@click.argument("agency_code")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--good-only", is_flag=True, help="Keep the good rows when some are bad.")
def import_orders(agency_code: str, path: Path, good_only: bool):
    """Import work orders of AGENCY_CODE from a CSV or XLSX file."""
    from tenants.models import Agency

    g._audit_actor = None
    with unscoped("an operator names the agency by its code"):
        agency = db.session.scalars(select(Agency).where(Agency.code == agency_code)).first()
    if agency is None:
        raise click.ClickException(f"no agency {agency_code}")
    with scoped(agency_scope(agency.id)):
        _run(imports.import_work_orders, path, imports.ORDER_COLUMNS, agency,
             good_only=good_only)


@service_cli.command("import-catalog")
@click.argument("kind", type=click.Choice(imports.IMPORT_KINDS))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--good-only", is_flag=True, help="Keep the good rows when some are bad.")
def import_catalog(kind: str, path: Path, good_only: bool):
    """Import repair codes, fault codes or parts (HQ catalogs) from a CSV or XLSX file."""
    g._audit_actor = None
    with unscoped("HQ catalogs belong to no agency"):
        _run(imports.import_catalog, path, imports.CATALOG_COLUMNS[kind], kind,
             good_only=good_only)
