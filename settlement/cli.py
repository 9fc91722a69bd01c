"""Settlement commands: re-check every stored total against the sum of its lines."""
from decimal import Decimal

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from portal.extensions import db
from portal.tenancy import unscoped
from settlement.models import Settlement, SettlementLine


def init_app(app) -> None:
    app.cli.add_command(check_totals)


def mismatched_totals() -> list[tuple[str, str]]:
    """(settlement number, what differs) wherever a stored total is not the SQL sum of lines.

    One GROUP BY for the whole network.
    """
    sums = (select(SettlementLine.agency_id, SettlementLine.settlement_id,
                   func.sum(SettlementLine.claimed_amount).label("claimed"),
                   func.sum(SettlementLine.approved_amount).label("approved"),
                   func.count(SettlementLine.id).label("n"))
            .group_by(SettlementLine.agency_id, SettlementLine.settlement_id).subquery())
    rows = db.session.execute(
        select(Settlement.number, Settlement.claimed_total, Settlement.approved_total,
               Settlement.line_count, sums.c.claimed, sums.c.approved, sums.c.n)
        .outerjoin(sums, (sums.c.settlement_id == Settlement.id)
                   & (sums.c.agency_id == Settlement.agency_id))).all()
    problems = []
    zero = Decimal("0.00")
    for number, claimed, approved, count, claimed_sum, approved_sum, n in rows:
        if (claimed, approved, count) != (claimed_sum or zero, approved_sum or zero, n or 0):
            problems.append((number, f"stored {claimed}/{approved}/{count}, lines "
                                     f"{claimed_sum}/{approved_sum}/{n}"))
    return problems


@click.command("settlement-check-totals")
@with_appcontext
def check_totals():
    """Re-check that every settlement's stored totals equal the sums of its lines."""
    with unscoped("an operator re-checks every settlement's totals"):
        problems = mismatched_totals()
    for number, what in problems:
        click.echo(f"MISMATCH {number}: {what}")
    if problems:
        raise click.ClickException(f"{len(problems)} settlements with wrong totals")
    click.echo("all settlement totals equal the sums of their lines")
