"""Every view declares who may call it; the declaration is checked here and by the tests."""
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user

from portal.auth.roles import Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AccessPolicy:
    roles: frozenset = frozenset()
    public: bool = False
    # Requests on one's own account (sign-out, password, language) that auditors may send too.
    self_service: bool = False
    # The transitions (portal.transitions) a POST to the view performs; a POST view that
    # changes nothing (a preview, a check, a download) says read_only instead.
    transitions: tuple = ()
    read_only: bool = False


def allow(*roles: Role, self_service: bool = False, read_only: bool = False,
          transitions: tuple = (), anonymous: Callable | None = None):
    """Let signed-in users with one of `roles` call the view; anonymous users go to sign-in
    (or get what `anonymous()` answers: the API's 401). `read_only`: a POST to it changes
    nothing (a check, a preview)."""
    policy = AccessPolicy(roles=frozenset(roles), self_service=self_service,
                          read_only=read_only, transitions=tuple(transitions))

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return (anonymous or current_app.login_manager.unauthorized)()
            if current_user.role not in policy.roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.access_policy = policy
        return wrapped

    return decorator


def performs(*names: str, self_service: bool = False, anonymous: Callable | None = None):
    """The route guard of a view that performs the transitions `names` (one per button it
    answers): the roles their policies allow may call it; the service checks the rest."""
    from portal import policy, transitions

    permissions = [transitions.get(n).permission for n in names]
    return allow(*policy.roles(*permissions), self_service=self_service, transitions=names,
                 anonymous=anonymous)


def public(view=None, *, read_only: bool = False, transitions: tuple = ()):
    """Mark a view as reachable without signing in (sign-in page, certificate check)."""
    def mark(view):
        view.access_policy = AccessPolicy(public=True, read_only=read_only,
                                          transitions=tuple(transitions))
        return view

    return mark(view) if view is not None else mark


def policy_of(endpoint: str) -> AccessPolicy | None:
    if endpoint == "static" or endpoint.endswith(".static"):
        return AccessPolicy(public=True)
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "access_policy", None)


def enforce_declared_policy():
    """before_request: refuse views without a policy and every write by an auditor."""
    if request.endpoint is None:
        return None  # 404/405 follow
    policy = policy_of(request.endpoint)
    if policy is None:
        current_app.logger.error("view %s declares no access policy", request.endpoint)
        abort(403)
    if (
        current_user.is_authenticated
        and current_user.role == Role.AUDITOR
        and request.method not in SAFE_METHODS
        and not policy.self_service
        and not policy.public
    ):
        abort(403)
    return None


def role_required_any(*roles: Role):
    """Abort with 403 unless the current user has one of `roles` (inside a shared view)."""
    if current_user.role not in roles:
        abort(403)


