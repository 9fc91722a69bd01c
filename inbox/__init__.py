"""The workplace (§2.7): every user's inbox of tasks and notices, e-mail through an outbox,
reminders and escalations by a tick, and HQ's announcements.

It sits above every area it listens to: items come from the write path's signals
(:data:`portal.transitions.transitioned`) through the declared table in :mod:`inbox.events`
and :mod:`inbox.reminders`; no area imports it.
"""


def init_app(app) -> None:
    from inbox import (  # noqa: F401 - declarations and transitions register on import
        announcements,
        cli,
        demo,
        events,
        outbox,
        profile,
        reminders,
        synth,
        views,
        views_announcements,
    )
    from inbox.notify import on_transition
    from portal.transitions import transitioned

    app.register_blueprint(views.bp)
    app.jinja_env.globals["due_words"] = due_words
    transitioned.connect(on_transition, weak=False)
    # The settlement list flags a review past the workplace's limit: the limit is this area's
    # setting, asked for by a signal (settlement imports no area above it).
    from inbox import settings
    from settlement.config import review_limit_wanted

    review_limit_wanted.connect(lambda _sender: settings.current().settlement_review_days,
                                weak=False)
    cli.init_app(app)
    demo.register()
    profile.register()


def due_words(due_at) -> dict:
    """A due time in the user's words: "due in 2 days", "overdue by 3 hours"."""
    from flask_babel import format_timedelta
    from flask_babel import gettext as _

    from portal.clock import now

    delta = due_at - now()
    span = format_timedelta(abs(delta), threshold=1.0, granularity="minute")
    if delta.total_seconds() >= 0:
        return {"text": _("due in %(span)s", span=span), "overdue": False}
    return {"text": _("overdue by %(span)s", span=span), "overdue": True}
