"""Password hashing: argon2id, with old or weaker hashes upgraded on sign-in."""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from werkzeug.security import check_password_hash


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    # OWASP's argon2id baseline is 19 MiB / 2 passes; we use 64 MiB / 3 passes by default.
    return PasswordHasher(
        time_cost=cfg.get("ARGON2_TIME_COST", 3),
        memory_cost=cfg.get("ARGON2_MEMORY_COST", 65536),
        parallelism=cfg.get("ARGON2_PARALLELISM", 4),
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str, password: str) -> tuple[bool, bool]:
    """Return (matches, needs_rehash); werkzeug scrypt/pbkdf2 hashes are accepted and upgraded."""
    if stored.startswith("$argon2"):
        hasher = _hasher()
        try:
            hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, False
        return True, hasher.check_needs_rehash(stored)
    try:
        return check_password_hash(stored, password), True
    except ValueError:
        return False, False
