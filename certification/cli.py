"""Certification commands: the reminders a scheduler sends (expiring certificates, gaps)."""
import csv
import sys
from datetime import date

import click
from flask import g
from flask.cli import AppGroup

from certification import queries
from certification.states import EXPIRING_DAYS
from portal.clock import local_today
from portal.extensions import db
from portal.tenancy import unscoped

certification_cli = AppGroup("certification", help="Engineer certification commands.")


def init_app(app) -> None:
    app.cli.add_command(certification_cli)


def reminders_due(today: date, days: int) -> list[tuple]:
    """Rows (kind, agency code, subject, detail, due date) for the whole network."""
    out = []
    for cert in db.session.scalars(queries.expiring_statement(today, days)):
        agency = cert.engineer.agency
        out.append(("expiring", agency.code, cert.engineer.name,
                    f"{cert.number} ({cert.program.product_line.code} L{cert.level})",
                    cert.valid_to.isoformat()))
    for row in db.session.execute(queries.coverage_statement(today, gaps_only=True)):
        out.append(("coverage_gap", row.code, row.line_code,
                    f"{row.holders}/{row.required} L2", today.isoformat()))
    return out


@certification_cli.command("reminders")
@click.option("--days", default=EXPIRING_DAYS, show_default=True, type=click.IntRange(0, 3650),
              help="Certificates whose last valid day falls within this many days.")
@click.option("--on", "on", default=None, help="The day to compute for (YYYY-MM-DD); today "
                                               "by default.")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated output with a header.")
def reminders(days: int, on: str | None, as_csv: bool):
    """List the reminders due: expiring certificates and agencies short of L2 engineers."""
    try:
        today = date.fromisoformat(on) if on else local_today()
    except ValueError as error:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--on") from error
    g._audit_actor = None
    with unscoped("the scheduler lists reminders for the whole network"):
        rows = reminders_due(today, days)
    db.session.rollback()
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(("kind", "agency", "subject", "detail", "due"))
        writer.writerows(rows)
        return
    for row in rows:
        click.echo("\t".join(row))
    click.echo(f"{len(rows)} reminders", err=True)
