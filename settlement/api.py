"""What the settlement area asks of the areas above it, as signals (it imports none of them).

- :data:`grade_wanted`: sent for each quarter a claim may carry a grade line, with
  ``agency_id``, ``year`` and ``quarter``; a receiver (the evaluation area) returns the
  agency's final grade, "A" to "D", or None while the quarter is not final. No receiver, no
  grade line.
"""
from portal.transitions import signals

grade_wanted = signals.signal("settlement.grade_wanted")


def claimed(subject, column: str):
    """SQL: a live settlement claim holds the row of `subject` (a model) through `column`
    (the workplace's claim-window reminder asks which completed orders are still unclaimed)."""
    from settlement.building import _claimed

    return _claimed(subject, column)


def claim_window_days() -> int:
    """Days after completion within which an order may be claimed (HQ's setting)."""
    from settlement.config import current_settings

    return current_settings().claim_window_days
