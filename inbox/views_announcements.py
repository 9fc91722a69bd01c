"""HQ's announcements (群发): writing one, following who read and acknowledged it, reminding
those who have not; and the recipient's page with its acknowledgement.

The announcement row is HQ's and not tenant-scoped: a recipient reaches it only through their
own inbox item, so every other reader gets a 404 as for a missing one.
"""
import re
from itertools import groupby

from flask import abort, redirect, render_template, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import and_, func, select

from inbox import policy, services
from inbox.announcements import AUDIENCE_LABELS, publish, remind
from inbox.forms import ActionForm, AnnouncementForm
from inbox.models import Announcement, InboxItem
from inbox.views import EVERYONE, bp
from portal import policy as rules
from portal.auth.access import allow, performs
from portal.auth.models import User
from portal.commit import done, perform
from portal.extensions import db
from portal.listing import paginate
from portal.tenancy import unscoped
from tenants.models import Agency, ProductLine, Region

WRITERS = rules.roles(policy.ANNOUNCE)
# Reminders are items of the announcement too: counts and acknowledgements read the first one.
PUBLISHED = "announcement.published"


# Items belong to their recipients: HQ's counts of who read and acknowledged read all of them.
COUNTS = "HQ counts who read and acknowledged its announcement"


def _counts() -> tuple:
    """Recipients, read and acknowledged among the announcement items of a group."""
    return (func.count().label("recipients"), func.count(InboxItem.read_at).label("read"),
            func.count(InboxItem.acknowledged_at).label("acknowledged"))


def _name(model):
    """The column of `model`'s name in the reader's language."""
    return model.name_zh if str(get_locale()).startswith("zh") else model.name_en


def _announcement_or_404(announcement_id: int) -> Announcement:
    return db.first_or_404(select(Announcement).where(Announcement.id == announcement_id))


def _own_item(announcement_id: int) -> InboxItem | None:
    """The signed-in user's item of the announcement (None: it was not addressed to them)."""
    return db.session.scalars(select(InboxItem).where(
        InboxItem.announcement_id == announcement_id, InboxItem.event == PUBLISHED,
        InboxItem.recipient_id == current_user.id)).first()


# --- HQ: the list, a new one, following it up -------------------------------------------------


@bp.route("/announcements/")
@allow(*WRITERS)
def announcements():
    """Newest first, with the audience's name, the author and one aggregate for the page."""
    region, line = _name(Region), _name(ProductLine)
    page = paginate(
        select(Announcement, region.label("region"), line.label("line"),
               User.name.label("author"))
        .outerjoin(Region, and_(Announcement.audience == "region",
                                Region.id == Announcement.audience_id))
        .outerjoin(ProductLine, and_(Announcement.audience == "product_line",
                                     ProductLine.id == Announcement.audience_id))
        .outerjoin(User, User.id == Announcement.created_by_id)
        .order_by(Announcement.created_at.desc(), Announcement.id.desc()), rows=True)
    ids = [row.Announcement.id for row in page.items]
    with unscoped(COUNTS):
        counts = {row.announcement_id: row for row in db.session.execute(
            select(InboxItem.announcement_id, *_counts())
            .where(InboxItem.announcement_id.in_(ids), InboxItem.event == PUBLISHED)
            .group_by(InboxItem.announcement_id))} if ids else {}
    return render_template("inbox/announcements.html", page=page, counts=counts,
                           audiences=AUDIENCE_LABELS)


def _announcement_form() -> AnnouncementForm:
    form = AnnouncementForm()
    none = [(0, "—")]
    form.region_id.choices = none + [
        (r.id, f"{r.code} · {r.name(str(get_locale()))}")
        for r in db.session.scalars(select(Region).order_by(Region.code))]
    form.product_line_id.choices = none + [
        (p.id, f"{p.code} · {p.name(str(get_locale()))}")
        for p in db.session.scalars(select(ProductLine).where(ProductLine.is_active.is_(True))
                                    .order_by(ProductLine.code))]
    return form


def _offered(field) -> int:
    """The id chosen if the form offered it, else 0 (which the service refuses with its
    message; an id beyond any integer column never reaches the database)."""
    return field.data if field.data in {value for value, _label in field.choices} else 0


def _publish_data(form: AnnouncementForm) -> dict:
    audience = form.audience.data
    return {"title": form.title.data, "body": form.body.data, "audience": audience,
            "audience_id": {"region": _offered(form.region_id),
                            "product_line": _offered(form.product_line_id)}.get(audience),
            "staff_too": form.staff_too.data, "requires_ack": form.requires_ack.data,
            "ack_by": form.ack_by.data}


@bp.route("/announcements/new", methods=["GET", "POST"])
@performs("announcement.published")
def announcement_new():
    form = _announcement_form()
    if form.validate_on_submit():
        ok, announcement = perform(publish, None, _publish_data(form), form=form)
        if ok:
            return done(ngettext("Announcement sent to %(num)s recipient.",
                                 "Announcement sent to %(num)s recipients.",
                                 announcement.recipient_count),
                        "inbox.announcement", announcement_id=announcement.id)
    return render_template("inbox/announcement_new.html", form=form), \
        400 if form.is_submitted() else 200


@bp.route("/announcements/<int:announcement_id>")
@allow(*EVERYONE)
def announcement(announcement_id):
    """HQ's writers follow it up; anyone else reads it only when it was addressed to them."""
    item = _own_item(announcement_id)
    follow_up = rules.can(current_user, policy.ANNOUNCE)
    if item is None and not follow_up:
        abort(404)  # as for a missing announcement: never say that it exists
    return _announcement_page(_announcement_or_404(announcement_id), item, follow_up)


def _announcement_page(announcement: Announcement, item: InboxItem | None, follow_up: bool):
    context = {"a": announcement, "item": item, "body": render_body(announcement.body),
               "audience": _audience_words(announcement), "follow_up": follow_up}
    if follow_up:
        context.update(_follow_up(announcement))
    return render_template("inbox/announcement.html", **context)


def _audience_words(announcement: Announcement) -> str:
    label = str(AUDIENCE_LABELS.get(announcement.audience, announcement.audience))
    model = {"region": Region, "product_line": ProductLine}.get(announcement.audience)
    if model is None:
        return label
    named = db.session.scalar(select(_name(model)).where(model.id == announcement.audience_id))
    return f"{label}: {named}" if named else label


def _follow_up(announcement: Announcement) -> dict:
    """The totals and one page of agencies, the least acknowledged (or read) first."""
    where = (InboxItem.announcement_id == announcement.id, InboxItem.event == PUBLISHED)
    done_column = InboxItem.acknowledged_at if announcement.requires_ack else InboxItem.read_at
    waiting = func.count() - func.count(done_column)
    with unscoped(COUNTS):
        totals = db.session.execute(select(*_counts()).where(*where)).one()
        agencies = paginate(
            select(Agency.code, Agency.legal_name, *_counts())
            .select_from(InboxItem).outerjoin(Agency, Agency.id == InboxItem.agency_id)
            .where(*where).group_by(InboxItem.agency_id, Agency.code, Agency.legal_name)
            .order_by(waiting.desc(), Agency.code.is_(None), Agency.code), rows=True)
    return {"totals": totals, "agencies": agencies,
            "waiting": totals.recipients - (totals.acknowledged if announcement.requires_ack
                                            else totals.read)}


@bp.route("/announcements/<int:announcement_id>/remind", methods=["POST"])
@performs("announcement.reminded")
def announcement_remind(announcement_id):
    announcement = _announcement_or_404(announcement_id)
    if ActionForm().validate_on_submit():
        ok, made = perform(remind, announcement)
        if ok:
            message = ngettext("%(num)s recipient reminded.", "%(num)s recipients reminded.",
                               made) if made else _(
                "Nobody to remind: everyone has acknowledged or was reminded today.")
            return done(message, "inbox.announcement", announcement_id=announcement.id)
    return redirect(url_for("inbox.announcement", announcement_id=announcement.id))


# --- the recipient ----------------------------------------------------------------------------


@bp.route("/announcements/<int:announcement_id>/acknowledge", methods=["POST"])
@performs("inbox.acknowledged", self_service=True)
def announcement_acknowledge(announcement_id):
    item = _own_item(announcement_id)
    if item is None:
        abort(404)
    if ActionForm().validate_on_submit() and perform(services.acknowledge, item):
        return done(_("Thank you: your acknowledgement is recorded."), "inbox.announcement",
                    announcement_id=announcement_id)
    return redirect(url_for("inbox.announcement", announcement_id=announcement_id))


# --- the body: plain text with a little Markdown ----------------------------------------------

# Matched in escaped text, so quotes and angle brackets are entities by then; "&amp;" is the
# only entity a link may hold, and it does not end on punctuation that closes the sentence.
_URL = re.compile(r"https?://(?:[A-Za-z0-9\-._~:/?#\[\]@!$()+,;=%]|&amp;)*"
                  r"(?:[A-Za-z0-9\-_~/#\[\]@$+=%]|&amp;)")
# Spans are bounded: an unclosed marker costs a few hundred steps, not the whole message.
_BOLD = re.compile(r"\*\*(?=\S)(.{1,300}?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<!\*)\*(?=[^\s*])(.{1,300}?)(?<=[^\s*])\*(?!\*)")
_KEPT = re.compile("\x00(\\d+)\x00")


def render_body(text: str | None) -> Markup:
    """An announcement's text as HTML: everything escaped first, then **bold**, *italic*,
    lines starting with "- " as a list, http(s) addresses as links, blank lines between
    paragraphs. Nothing the author types becomes a tag or an attribute of its own."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    blocks = [b for b in re.split(r"\n[ \t]*\n", text) if b.strip()]
    return Markup("\n".join(_block(b) for b in blocks))  # noqa: S704 - built from escape()


def _is_item(line: str) -> bool:
    return line.lstrip().startswith("- ")


def _block(block: str) -> str:
    parts = []
    for is_list, lines in groupby(block.split("\n"), key=_is_item):
        lines = list(lines)
        if is_list:
            parts.append("<ul>" + "".join(f"<li>{_inline(line.lstrip()[2:])}</li>"
                                          for line in lines) + "</ul>")
        else:
            parts.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    return "\n".join(parts)


def _inline(line: str) -> str:
    """One escaped line with its links and emphasis; links are set aside while emphasis is
    applied, so a star in an address never turns into a tag inside an attribute."""
    links: list[str] = []

    def keep(match) -> str:
        links.append(match.group(0))
        return f"\x00{len(links) - 1}\x00"

    html = _URL.sub(keep, str(escape(line.strip())))
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    html = _ITALIC.sub(r"<em>\1</em>", html)
    return _KEPT.sub(lambda m: (f'<a href="{links[int(m.group(1))]}" rel="noopener" '
                                f'target="_blank">{links[int(m.group(1))]}</a>'), html)
