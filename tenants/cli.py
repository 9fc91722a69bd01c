"""Network commands: create an account from the command line."""
import click
from flask.cli import with_appcontext

from portal.auth.passwords import hash_password
from portal.auth.roles import Role
from portal.commit import committed
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import unscoped
from tenants import services


def init_app(app) -> None:
    app.cli.add_command(create_user)


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--agency-code", default=None, help="For agency roles.")
@click.option("--region-code", default=None, help="For regional managers.")
@click.password_option()
@with_appcontext
def create_user(email, name, role, agency_code, region_code, password):
    """Create an account (the first HQ admin of a new installation, say)."""
    from sqlalchemy import select

    from tenants.models import Agency, Region

    with unscoped("an operator creates accounts from the command line"):
        agency_id = region_id = None
        if agency_code:
            agency_id = db.session.scalar(select(Agency.id).where(Agency.code == agency_code))
            if agency_id is None:
                raise click.ClickException(f"no agency {agency_code}")
        if region_code:
            region_id = db.session.scalar(select(Region.id).where(Region.code == region_code))
            if region_id is None:
                raise click.ClickException(f"no region {region_code}")
        try:
            with committed():
                user = services.create_account(email, name=name, role=Role(role),
                                               agency_id=agency_id, region_id=region_id,
                                               password_hash=hash_password(password),
                                               acting_user=None)
        except DomainError as error:
            raise click.ClickException(error.message) from error
    click.echo(f"created {user.email} ({user.role})")
