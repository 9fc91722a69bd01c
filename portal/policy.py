"""Who may do what, written once.

Each area declares its actions in its ``policy.py`` with :func:`rule`; three readers use that
one declaration:

- the route guard: ``@performs("settlement.paid")`` (portal.auth.access) lets in the roles of
  the transitions a view performs, ``@allow(*policy.roles("…"))`` a page;
- templates: ``{% if can('settlement.pay', s) %}`` shows a button only to someone the service
  will accept (no role names in templates);
- the write path: a transition (portal.transitions) refuses an actor the rule refuses, with
  the rule's message.

A rule is roles plus, optionally, a condition on the record (``when(user, record)``) with the
message that explains a refusal ("The first approver cannot give the second approval.").
``system=True`` lets jobs and commands (no signed-in person) perform it.
"""
from dataclasses import dataclass
from typing import Callable

from flask_babel import lazy_gettext as _l

from portal.auth.roles import Role


@dataclass(frozen=True)
class Rule:
    action: str
    roles: frozenset
    when: Callable | None = None
    refusal: object = None  # a lazy message shown when `when` refuses
    system: bool = False
    role_refusal: object = None  # a lazy message for a role the rule leaves out


_rules: dict[str, Rule] = {}

NOT_YOURS = _l("Your role cannot do this.")


def rule(action: str, *roles: Role, when: Callable | None = None, refusal=None,
         system: bool = False, role_refusal=None) -> str:
    """Declare who may do `action`; returns the action's name for the module to keep.
    `role_refusal` explains the refusal to other roles ("HQ settlement staff record
    payments."); without it they read "Your role cannot do this."."""
    new = Rule(action, frozenset(Role(r) for r in roles), when, refusal, system, role_refusal)
    old = _rules.get(action)
    if old is not None and (old.roles, old.system) != (new.roles, new.system):
        raise ValueError(f"action {action!r} is declared twice, differently")
    _rules[action] = new
    return action


def rule_of(action: str) -> Rule:
    try:
        return _rules[action]
    except KeyError:
        raise LookupError(f"no policy declares {action!r}") from None


def rules() -> dict[str, Rule]:
    return dict(_rules)


def roles(*actions: str) -> tuple[Role, ...]:
    """The roles that may do any of `actions` (for a page guard), in the Role order."""
    allowed = frozenset().union(*(rule_of(a).roles for a in actions))
    return tuple(r for r in Role if r in allowed)


def _role_of(user) -> Role | None:
    """The user's role (None for the anonymous visitor). Reads the role column only: whether
    the account may still sign in was settled when its session was loaded."""
    try:
        return Role(getattr(user, "role", None))
    except ValueError:
        return None


def refusal(user, action: str, record=None) -> str | None:
    """Why `user` may not do `action` on `record` (a translated message), or None if they may.
    `user` None is the system: a job or a command."""
    found = rule_of(action)
    if user is None:
        return None if found.system else str(NOT_YOURS)
    if _role_of(user) not in found.roles:
        return str(found.role_refusal or NOT_YOURS)
    if record is not None and found.when is not None and not found.when(user, record):
        return str(found.refusal or NOT_YOURS)
    return None


def can(user, action: str, record=None) -> bool:
    """True when `user` may do `action` (on `record`, when given)."""
    return refusal(user, action, record) is None


def init_app(app) -> None:
    """`can(action, record=None)` in templates, for the signed-in user."""
    from flask_login import current_user

    @app.context_processor
    def policy_helpers():
        return {"can": lambda action, record=None: can(current_user, action, record)}
