"""Configuration read from the environment; SQLite under instance/ is the embedded default."""
import os
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _database_url(instance_path: str) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "portal.sqlite3")
    return normalize_database_url(url)


def normalize_database_url(url: str) -> str:
    # Heroku-style URLs name the old driver; psycopg 3 is the one we ship.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load(app) -> None:
    """Fill app.config from defaults and the environment (PORTAL_* and a few standard names)."""
    env = os.environ
    secret = env.get("SECRET_KEY") or _instance_secret(app.instance_path)
    app.config.update(
        SECRET_KEY=secret,
        # The domain areas the core serves, lowest layer first (menus appear in this order).
        AREAS=("tenants", "certification", "service", "dispatch", "settlement", "evaluation",
               "inbox", "api"),
        SQLALCHEMY_DATABASE_URI=_database_url(app.instance_path),
        # Owner role for migrations on PostgreSQL; the app itself connects as a plain role.
        MIGRATION_DATABASE_URL=env.get("MIGRATION_DATABASE_URL"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        REDIS_URL=env.get("REDIS_URL"),
        MAX_CONTENT_LENGTH=int(env.get("PORTAL_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        UPLOAD_ROOT=env.get("PORTAL_UPLOAD_ROOT", os.path.join(app.instance_path, "files")),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env.get("PORTAL_HTTPS", "0") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=env.get("PORTAL_HTTPS", "0") == "1",
        REMEMBER_COOKIE_DURATION=timedelta(days=14),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        PREFERRED_URL_SCHEME="https" if env.get("PORTAL_HTTPS", "0") == "1" else "http",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session, which already expires
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        PORTAL_LOCALES=("zh_CN", "en"),
        BOOTSTRAP_SERVE_LOCAL=True,
        # Webhooks: hosts endpoints may post to (names, IPs, networks; a comma list). A name
        # must resolve to public addresses unless those addresses are listed too.
        PORTAL_WEBHOOK_ALLOWED_HOSTS=env.get("PORTAL_WEBHOOK_ALLOWED_HOSTS", ""),
        # "background": RQ or a thread sends after each commit; "manual": only
        # `flask webhooks deliver` (unset: background when serving, manual in tests).
        WEBHOOK_DELIVERY=env.get("PORTAL_WEBHOOK_DELIVERY") or None,
        # Calls per API token (Flask-Limiter's notation; shared in Redis with REDIS_URL).
        API_RATE_LIMIT=env.get("PORTAL_API_RATE_LIMIT", "300/minute"),
        BOOTSTRAP_BOOTSWATCH_THEME=None,
        # Failed sign-ins: limits count one address's failures only (a stranger cannot lock
        # anyone out); an account's failures from anywhere earn a growing delay that binds
        # only the addresses that failed themselves (portal.throttle).
        SIGN_IN_LIMITS_PER_ACCOUNT_ADDRESS=env.get(
            "PORTAL_SIGN_IN_LIMIT_ACCOUNT_ADDRESS",
            env.get("PORTAL_SIGN_IN_LIMIT_ACCOUNT", "5 per 15 minutes")),
        SIGN_IN_LIMITS_PER_ADDRESS=env.get("PORTAL_SIGN_IN_LIMIT_ADDRESS", "30 per 15 minutes"),
        SIGN_IN_DELAY_AFTER_FAILURES=int(env.get("PORTAL_SIGN_IN_DELAY_AFTER", 5)),
        SIGN_IN_DELAY_MAX_SECONDS=int(env.get("PORTAL_SIGN_IN_DELAY_MAX_SECONDS", 60)),
        SIGN_IN_FAILURE_WINDOW_SECONDS=int(env.get("PORTAL_SIGN_IN_FAILURE_WINDOW_SECONDS",
                                                   15 * 60)),
        # The public certificate check: failed look-ups per address, and per (number, address).
        CERTIFICATE_CHECK_LIMITS_PER_ADDRESS=env.get("PORTAL_CERTIFICATE_CHECK_LIMIT_ADDRESS",
                                                     "20 per 15 minutes"),
        CERTIFICATE_CHECK_LIMITS_PER_NUMBER_ADDRESS=env.get(
            "PORTAL_CERTIFICATE_CHECK_LIMIT_NUMBER", "5 per 15 minutes"),
        # The public order status check (dispatch/views_status.py), throttled the same way.
        STATUS_CHECK_LIMITS_PER_ADDRESS=env.get("PORTAL_STATUS_CHECK_LIMIT_ADDRESS",
                                                "20 per 15 minutes"),
        STATUS_CHECK_LIMITS_PER_NUMBER_ADDRESS=env.get("PORTAL_STATUS_CHECK_LIMIT_NUMBER",
                                                       "5 per 15 minutes"),
        PAGE_SIZE=int(env.get("PORTAL_PAGE_SIZE", 25)),
        # Network-wide figures of home-page cards are recomputed at most this often (portal.memo).
        HOME_FIGURES_SECONDS=int(env.get("PORTAL_HOME_FIGURES_SECONDS", 60)),
        # E-mail (the workplace): the standard Flask-Mailman settings. Without MAIL_SERVER the
        # portal sends nothing and writes no outbox rows; the outbox page says so.
        MAIL_SERVER=env.get("MAIL_SERVER") or None,
        MAIL_PORT=int(env.get("MAIL_PORT", 25)),
        MAIL_USE_TLS=env.get("MAIL_USE_TLS", "0").lower() in ("1", "true", "yes"),
        MAIL_USE_SSL=env.get("MAIL_USE_SSL", "0").lower() in ("1", "true", "yes"),
        MAIL_USERNAME=env.get("MAIL_USERNAME") or None,
        MAIL_PASSWORD=env.get("MAIL_PASSWORD") or None,
        MAIL_DEFAULT_SENDER=env.get("MAIL_DEFAULT_SENDER", "Service Network Portal "
                                                           "<portal@localhost>"),
        MAIL_TIMEOUT=int(env.get("MAIL_TIMEOUT", 10)),
        # Where e-mails link to (the address people open the portal at).
        PORTAL_BASE_URL=env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        # "background": after a commit, RQ (REDIS_URL) or a thread of this process delivers;
        # "manual": only `flask workplace tick` / `deliver` (and tests) deliver.
        MAIL_DELIVERY=env.get("PORTAL_MAIL_DELIVERY", "background"),
        # In tests: fail any statement on an agency table that lacks the owner filter.
        TENANCY_STRICT=False,
    )


def _instance_secret(instance_path: str) -> str:
    """A random key kept in instance/ so that a fresh machine needs no configuration."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return path.read_text().strip()
