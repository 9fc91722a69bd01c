"""Service Network Portal: the core every area plugs into."""
import importlib
import logging
import os

from flask import Flask
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import config, errors, i18n, labels, policy
from portal.config import PROJECT_ROOT
from portal.extensions import (
    babel,
    bootstrap,
    csrf,
    db,
    dispatch,
    limiter,
    login_manager,
    mail,
    migrate,
    tune_sqlite,
)


class Portal(Flask):
    def dispatch_request(self):
        # A request that lost a race on SQLite after a stale read runs once more (extensions).
        return dispatch(super().dispatch_request)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application; runs no query."""
    app = Portal(
        __name__,
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH", str(PROJECT_ROOT / "instance")),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    config.load(app)
    if overrides:
        app.config.update(overrides)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    os.makedirs(app.instance_path, exist_ok=True)
    hops = int(os.environ.get("PORTAL_PROXY_HOPS", "0"))
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    logging.basicConfig(level=logging.INFO)
    # WeasyPrint and fontTools narrate every PDF at INFO; keep their warnings only.
    for chatty in ("weasyprint", "fontTools"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from portal.auth import sessions
    from portal.security import set_security_headers

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True,
                     render_as_batch=True)
    limiter.init_app(app)
    bootstrap.init_app(app)
    mail.init_app(app)
    babel.init_app(
        app,
        locale_selector=i18n.select_locale,
        default_translation_directories=";".join(i18n.translation_directories()),
    )
    login_manager.init_app(app)
    # The user's scope is set before anything else runs (CSRF refusals render pages too).
    sessions.init_app(app)
    csrf.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    app.after_request(set_security_headers)
    with app.app_context():
        _tune_engine(db.engine, app)


def _tune_engine(engine, app: Flask) -> None:
    if engine.dialect.name == "sqlite":
        tune_sqlite(engine)

    if app.config.get("TENANCY_STRICT"):
        from portal.tenancy import install_strict_guard

        install_strict_guard(engine)


def _register_blueprints(app: Flask) -> None:
    # The explicit list of areas: no auto-discovery, so a grep finds every route's home.
    from portal.audit.views import bp as audit_bp
    from portal.auth.views import bp as auth_bp
    from portal.web import bp as web_bp

    for bp in (web_bp, auth_bp, audit_bp):
        app.register_blueprint(bp)
    from portal import jobs_views

    jobs_views.init_app(app)

    # The areas, in the order their menus appear (config AREAS). Each registers its blueprint,
    # commands, demo loader and synthetic generator; add a new area to AREAS (and its catalog
    # in portal/i18n.py). The core imports no area by name: the layer contract (import-linter,
    # pyproject.toml) keeps the core below every area.
    for name in app.config["AREAS"]:
        importlib.import_module(name).init_app(app)

    policy.init_app(app)
    labels.init_app(app)

    @app.context_processor
    def navigation():
        from portal.navigation import menu_for

        return {"nav_menu": menu_for(current_user) if current_user.is_authenticated else []}


def _register_cli(app: Flask) -> None:
    from portal import backup, cli, synth

    cli.init_app(app)
    backup.init_app(app)
    synth.init_app(app)
