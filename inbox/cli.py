"""`flask --app wsgi workplace tick` (reminders, escalations, digests, delivery) and friends."""
import time

import click
from flask.cli import AppGroup

from portal.commit import committed
from portal.extensions import db

workplace_cli = AppGroup("workplace", help="The workplace: reminders, e-mail delivery.")


@workplace_cli.command("tick")
@click.option("--no-deliver", is_flag=True, help="Only create items; leave e-mail for later.")
@click.option("--every", type=click.IntRange(10, 86400), default=None,
              help="Keep running: tick again every SECONDS (instead of cron).")
def tick_command(no_deliver: bool, every: int | None) -> None:
    """Raise due reminders and escalations, queue digests, deliver due e-mail. Idempotent:
    run it every few minutes (cron, or --every)."""
    while True:
        _tick_once(no_deliver)
        if every is None:
            return
        time.sleep(every)


def _tick_once(no_deliver: bool) -> None:
    from inbox.outbox import deliver_pending, enabled
    from inbox.reminders import tick

    with committed():
        made = tick()
    for name, count in made.items():
        if count:
            click.echo(f"{name}: {count}")
    made.pop("offers_expired", None)  # printed above; not an item
    click.echo(f"items and digests created: {sum(made.values())}")
    if not no_deliver:
        if enabled():
            sent = deliver_pending()
            click.echo("e-mail: {sent} sent, {retry} to retry, {failed} failed".format(**sent))
        else:
            click.echo("e-mail: off (MAIL_SERVER is not set)")
    db.session.remove()


@workplace_cli.command("deliver")
def deliver_command() -> None:
    """Deliver the outbox's due e-mail now."""
    from inbox.outbox import deliver_pending, enabled

    if not enabled():
        raise click.ClickException("MAIL_SERVER is not set: nothing is sent")
    sent = deliver_pending()
    click.echo("e-mail: {sent} sent, {retry} to retry, {failed} failed".format(**sent))


def init_app(app) -> None:
    app.cli.add_command(workplace_cli)
