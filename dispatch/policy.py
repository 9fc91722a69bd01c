"""Who may do what with the network's clock."""
from portal.auth.roles import Role
from portal.policy import rule

# Everyone reads the calendar the SLA clocks run on: agencies are measured on it.
CALENDAR_READERS = tuple(Role)
CALENDAR_EDIT = rule("calendar.hours_changed", Role.HQ_ADMIN, system=True)
EXCEPTION_SAVE = rule("calendar.exception_saved", Role.HQ_ADMIN, system=True)
EXCEPTION_REMOVE = rule("calendar.exception_removed", Role.HQ_ADMIN, system=True)

# Coverage (服务区域): an agency declares the cities/districts it covers per product line and
# service type; HQ admin approves or rejects each declaration.
COVERAGE_READERS = (*(r for r in Role if r.is_hq_role), Role.AGENCY_OWNER, Role.AGENCY_STAFF)
COVERAGE_DECLARE = rule("coverage.declared", Role.AGENCY_OWNER, Role.HQ_ADMIN, system=True)
COVERAGE_WITHDRAW = rule("coverage.withdrawn", Role.AGENCY_OWNER, Role.HQ_ADMIN, system=True)
COVERAGE_DECIDE = rule("coverage.decided", Role.HQ_ADMIN, system=True)

# Service requests (the hotline's calls): the dispatchers take them and read the customer in
# full; other HQ readers see them masked; agencies never read a request (they read offers and,
# once accepted, their own work order).
DISPATCHERS = (Role.HQ_DISPATCHER, Role.HQ_ADMIN)
REQUEST_READERS = (*DISPATCHERS, Role.HQ_SERVICE, Role.AUDITOR)
REQUEST_CREATE = rule("service_request.created", *DISPATCHERS, system=True)
REQUEST_LINK = rule("service_request.call_linked", *DISPATCHERS, system=True)
REQUEST_CANCEL = rule("service_request.cancelled", *DISPATCHERS, system=True)

# Offers: the dispatcher offers a request to one agency, whose owner or staff answer it; the
# tick (system) expires an unanswered one. Agencies read their offers, never the request.
AGENCY_ANSWERERS = (Role.AGENCY_OWNER, Role.AGENCY_STAFF)
OFFER_READERS = (*REQUEST_READERS, *AGENCY_ANSWERERS)
OFFER_MAKE = rule("dispatch_offer.made", *DISPATCHERS, system=True)
OFFER_ANSWER = rule("dispatch_offer.answer", *AGENCY_ANSWERERS)
OFFER_WITHDRAW = rule("dispatch_offer.withdrawn", *DISPATCHERS, system=True)
OFFER_EXPIRE = rule("dispatch_offer.expired", system=True)

# Appointments (预约): the agency books and reschedules its orders' windows.
APPOINTMENT_BOOK = rule("appointment.book", *AGENCY_ANSWERERS, system=True)

# SLA: HQ admin sets the targets; dispatchers, HQ service and regional managers watch the
# board (a regional manager sees the region's agencies: the tenant scope).
SLA_TARGET_SET = rule("sla.target_set", Role.HQ_ADMIN, system=True)
SLA_BOARD_READERS = (*DISPATCHERS, Role.HQ_SERVICE, Role.REGIONAL_MANAGER, Role.AUDITOR)
