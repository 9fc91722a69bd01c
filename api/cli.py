"""``flask --app wsgi api-token create --user EMAIL --name NAME [--days N]``."""
import click
from sqlalchemy import func, select

from portal.extensions import db


def init_app(app) -> None:
    @app.cli.group("api-token")
    def api_token():
        """API tokens for scripts and the demo."""

    @api_token.command("create")
    @click.option("--user", "email", required=True, help="The account the token acts as.")
    @click.option("--name", required=True, help="What the token is for.")
    @click.option("--days", default=90, show_default=True, type=int,
                  help="How long it lives (1 to 366 days).")
    def create(email, name, days):
        """Print a new token once (it is stored as a hash only)."""
        from api.tokens import create_token
        from portal.auth.models import User
        from portal.commit import committed
        from portal.errors_domain import DomainError
        from portal.tenancy import unscoped

        with unscoped("a command makes a token for any account"), committed():
            user = db.session.scalars(select(User).where(
                func.lower(User.email) == email.strip().lower())).one_or_none()
            if user is None:
                raise click.ClickException(f"no account {email}")
            try:
                _row, secret = create_token(user, acting_user=None, name=name, days=days)
            except DomainError as error:
                raise click.ClickException(error.message) from None
        click.echo(secret)
