"""Reads other areas rely on: is an engineer certified for a product line on a day?"""
from sqlalchemy import exists, or_, select

from certification.models import Certificate


def valid_certificate_exists(engineer_id, product_line_id, day, *, min_level: int = 1):
    """A SQL EXISTS clause: the engineer holds a certificate of `min_level` or higher for the
    product line, valid on `day` and not revoked by then (each argument a value or column)."""
    return exists(
        select(Certificate.id).where(
            Certificate.engineer_id == engineer_id,
            Certificate.product_line_id == product_line_id,
            Certificate.level >= min_level,
            Certificate.valid_from <= day,
            Certificate.valid_to >= day,
            or_(Certificate.revoked_on.is_(None), Certificate.revoked_on > day),
        )
    )
