"""The commit points: one for web requests (:func:`perform`), one for commands and jobs
(:func:`committed`). Services flush and never commit; nothing else calls ``commit()``.

A view reads: load → form → ``perform(service, …, form=form)`` → redirect::

    if form.validate_on_submit() and perform(services.submit, settlement, form=form,
                                             seen_version=form.version.data):
        return redirect(...)
    return render_template(..., form=form), 400
"""
import inspect
from contextlib import contextmanager
from typing import Any, NamedTuple

from flask import flash
from flask_login import current_user

from portal.errors_domain import DomainError, attach_to_form
from portal.extensions import db


class Outcome(NamedTuple):
    """What a request's change came to: ``ok`` and the service's result. True when it was
    committed, so ``if perform(...)`` and ``ok, order = perform(...)`` both read."""

    ok: bool
    value: Any = None

    def __bool__(self) -> bool:
        return self.ok


def perform(service, *args, form=None, then=None, **kwargs) -> Outcome:
    """Run one service as the signed-in user and commit. A refusal (DomainError) rolls
    everything back and is shown on `form` (on its field, or above it), or flashed when the
    request has no form. `then(result)` runs before the commit (signing the user in)."""
    if _takes_actor(service):
        kwargs.setdefault("acting_user", current_user._get_current_object()
                          if current_user.is_authenticated else None)
    try:
        value = service(*args, **kwargs)
        if then is not None:
            then(value)
    except DomainError as error:
        db.session.rollback()
        if form is not None:
            attach_to_form(form, error)
        else:
            flash(error.message, "danger")
        return Outcome(False)
    db.session.commit()
    return Outcome(True, value)


def _takes_actor(service) -> bool:
    if getattr(service, "transition", None) is not None:
        return True
    return "acting_user" in inspect.signature(service).parameters


@contextmanager
def committed():
    """A command's or a job's unit of work: committed when the block ends, rolled back when it
    raises."""
    try:
        yield db.session
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def done(message: str, endpoint: str, anchor: str = "", **values):
    """After a committed change: say so and go to `endpoint` (the page that shows it)."""
    from flask import redirect, url_for

    flash(message, "success")
    return redirect(url_for(endpoint, **values) + anchor)
