"""The inbox, e-mail preferences, and HQ admin's outbox and workplace settings."""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from inbox import outbox, preferences, queries, services
from inbox import settings as workplace
from inbox.forms import ActionForm, PreferencesForm, SettingsForm, mode_field
from inbox.models import FAILED, MailMessage
from inbox.outbox import item_link, item_title
from inbox.registry import CATEGORIES
from portal.auth.access import allow, performs
from portal.auth.roles import Role
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import paginate
from portal.navigation import add_nav, add_widget
from portal.tenancy import unscoped

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
# E-mails belong to their recipients: HQ admin's outbox reads everyone's to list and resend.
OUTBOX = "HQ admin reviews and resends every account's e-mail"

EVERYONE = tuple(Role)
add_nav("inbox.index", _l("Inbox"), EVERYONE, order=1, badge=queries.open_task_count,
        badge_label=_l("open tasks"))
add_nav("inbox.outbox_page", _l("Outbox"), (Role.HQ_ADMIN,), order=95, group="admin")


def _waiting(user) -> dict:
    return {"items": [(item, item_title(item), item_link(item, user.role))
                      for item in queries.waiting_for(user)],
            "open_count": queries.open_task_count(user)}


add_widget("inbox/_widget_waiting.html", EVERYONE, _waiting, order=0)


@bp.route("/")
@allow(*EVERYONE)
def index():
    state = request.args.get("state", "open")
    state = state if state in queries.STATES else "open"
    kind = request.args.get("kind") if request.args.get("kind") in queries.KINDS else None
    category = request.args.get("category")
    category = category if category in CATEGORIES else None
    page = queries.items_page(current_user, state=state, kind=kind, category=category)
    rows = [(item, item_title(item), item_link(item, current_user.role)) for item in page.items]
    return render_template("inbox/index.html", page=page, rows=rows, state=state, kind=kind,
                           category=category, categories=CATEGORIES, form=ActionForm())


@bp.route("/<int:item_id>/open", methods=["POST"])
@performs("inbox.read", self_service=True)
def open_item(item_id):
    """Mark read and go to the thing the item points at."""
    item = queries.own_item(current_user, item_id)
    link = item_link(item, current_user.role)
    if ActionForm().validate_on_submit():
        perform(services.mark_read, item)
    return redirect(link or url_for("inbox.index"))


@bp.route("/<int:item_id>/read", methods=["POST"])
@performs("inbox.read", self_service=True)
def read(item_id):
    item = queries.own_item(current_user, item_id)
    if ActionForm().validate_on_submit() and perform(services.mark_read, item):
        return done(_("Marked as read."), "inbox.index", **_filters())
    return redirect(url_for("inbox.index", **_filters()))


@bp.route("/read-all", methods=["POST"])
@performs("inbox.read_all", self_service=True)
def read_all():
    if ActionForm().validate_on_submit() and perform(services.mark_all_read,
                                                     current_user._get_current_object()):
        return done(_("Everything is marked as read."), "inbox.index")
    return redirect(url_for("inbox.index"))


def _filters() -> dict:
    return {k: v for k, v in request.args.items() if k in ("state", "kind", "category", "page")}


# --- preferences ---------------------------------------------------------------------------


def _preferences_form():
    class Form(PreferencesForm):
        pass

    for category, label in CATEGORIES.items():
        setattr(Form, category, mode_field(label))
    return Form


@bp.route("/settings", methods=["GET", "POST"])
@performs("inbox.preferences_changed", self_service=True)
def preferences_page():
    form = _preferences_form()(data=preferences.modes_of(current_user.id)
                               if request.method == "GET" else None)
    if form.validate_on_submit():
        wanted = {c: getattr(form, c).data for c in CATEGORIES}
        if perform(preferences.save_preferences, current_user._get_current_object(), wanted,
                   form=form):
            return done(_("Your e-mail preferences are saved."), "inbox.preferences_page")
    return render_template("inbox/preferences.html", form=form, categories=CATEGORIES,
                           mail_on=outbox.enabled())


# --- HQ admin: the outbox and the settings ----------------------------------------------------


@bp.route("/outbox")
@allow(Role.HQ_ADMIN)
def outbox_page():
    status = request.args.get("status", FAILED)
    with unscoped(OUTBOX):
        counts = dict(db.session.execute(select(MailMessage.status, func.count())
                                          .group_by(MailMessage.status)).all())
        page = paginate(select(MailMessage).where(MailMessage.status == status)
                        .order_by(MailMessage.id.desc()))
    return render_template("inbox/outbox.html", page=page, counts=counts, status=status,
                           mail_on=outbox.enabled(), form=ActionForm(),
                           server=_server_description())


def _server_description() -> str:
    from flask import current_app

    config = current_app.config
    if not config.get("MAIL_SERVER"):
        return ""
    return f"{config['MAIL_SERVER']}:{config.get('MAIL_PORT')}"


@bp.route("/outbox/<int:message_id>/resend", methods=["POST"])
@performs("mail.resend")
def resend(message_id):
    with unscoped(OUTBOX):
        message = db.first_or_404(select(MailMessage).where(MailMessage.id == message_id))
        if ActionForm().validate_on_submit() and perform(outbox.resend, message):
            return done(_("The e-mail is queued again."), "inbox.outbox_page")
    return redirect(url_for("inbox.outbox_page"))


@bp.route("/workplace", methods=["GET", "POST"])
@performs("workplace.settings_changed")
def workplace_settings():
    row = workplace.current()
    form = SettingsForm(obj=row if request.method == "GET" else None)
    if request.method == "GET":
        form.version.data = row.version
    if form.validate_on_submit():
        data = {name: getattr(form, name).data for name in workplace.FIELDS}
        if perform(workplace.save_settings, row, data, form=form,
                   seen_version=form.version.data):
            return done(_("The workplace settings are saved."), "inbox.workplace_settings")
    return render_template("inbox/workplace.html", form=form, row=row)
