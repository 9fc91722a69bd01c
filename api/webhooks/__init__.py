"""Webhooks (§2.9): the write path's events, signed and posted to the endpoints HQ admin
(for HQ) and agency owners (for their own agency) register.

- :mod:`.models`: endpoints and deliveries (the outbox), HQ's or one agency's rows.
- :mod:`.events`: which transitions are which events, and what each delivery carries;
  the SLA events the workplace tick finds.
- :mod:`.delivery`: sending after the commit, signed, to allowed hosts only, with retries.
- :mod:`.services`, :mod:`.views`: the pages' write path and the pages.
"""
import click
from flask.cli import AppGroup

webhooks_cli = AppGroup("webhooks", help="Webhooks: send due deliveries, raise SLA events.")


@webhooks_cli.command("deliver")
def deliver_command() -> None:
    """Raise due SLA events, then send every delivery that is due now (retries included)."""
    from api.webhooks.delivery import deliver_pending
    from api.webhooks.events import raise_sla_events
    from portal.commit import committed

    with committed():
        raised = raise_sla_events()
    sent = deliver_pending()
    click.echo(f"SLA events raised: {raised}")
    click.echo("webhooks: {delivered} delivered, {retry} to retry, {given_up} given up"
               .format(**sent))


def init_app(app) -> None:
    from api.webhooks import services, views  # noqa: F401 - transitions register on import
    from api.webhooks.events import on_tick, on_transition
    from inbox.reminders import ticked
    from portal.transitions import transitioned

    app.register_blueprint(views.bp)
    transitioned.connect(on_transition, weak=False)
    ticked.connect(on_tick, weak=False)
    app.cli.add_command(webhooks_cli)
