"""What the settlement area asks of the areas above it, as signals (it imports none of them).

- :data:`grade_wanted`: sent for each quarter a claim may carry a grade line, with
  ``agency_id``, ``year`` and ``quarter``; a receiver (the evaluation area) returns the
  agency's final grade, "A" to "D", or None while the quarter is not final. No receiver, no
  grade line.
"""
from portal.transitions import signals

grade_wanted = signals.signal("settlement.grade_wanted")
