"""Who may do what in service work, written once (portal.policy).

The route guards (``@performs``), the templates (``can('…', record)``) and the transitions
(service.services, service.supply, service.quality, service.catalog, service.imports) read
these rules. Agencies keep their own orders, parts requests, returns and complaint answers;
HQ's parts desk decides and ships requests and inspects returns; HQ's service desk records
complaints and revisits and judges complaints; HQ administrators keep the code catalogs
(the parts desk keeps the parts catalog too). Imports run from the command line as well
(``system=True``).

Role groups that READ pages stay tuples here (``@allow(*READERS)``).
"""
from portal.auth.roles import Role
from portal.policy import rule

# Pages: who reads what.
EVERYONE = tuple(Role)
READERS = tuple(r for r in Role if r != Role.ENGINEER)  # parts, returns, complaints, revisits
AGENCY_EDITORS = (Role.AGENCY_OWNER, Role.AGENCY_STAFF)
HQ_PARTS = (Role.HQ_PARTS,)
HQ_SERVICE = (Role.HQ_SERVICE,)
CATALOG_EDITORS = {"repair_code": (Role.HQ_ADMIN,), "fault_code": (Role.HQ_ADMIN,),
                   "part": (Role.HQ_ADMIN, Role.HQ_PARTS)}

# --- work orders ---------------------------------------------------------------------------------
EDIT_ORDER = rule("work_order.edit", *AGENCY_EDITORS)  # create, change, complete
CANCEL_ORDER = rule("work_order.cancel", *AGENCY_EDITORS)
IMPORT_ORDERS = rule("work_order.import", *AGENCY_EDITORS, system=True)
# Parts returns and complaints shown on an order's page (engineers see neither).
SEE_ORDER_FOLLOW_UPS = rule("work_order.see_follow_ups", *READERS)

# --- revisits and complaints ---------------------------------------------------------------
RECORD_REVISIT = rule("revisit.record", *HQ_SERVICE)  # record or correct
IMPORT_REVISITS = rule("revisit.import", *HQ_SERVICE)
RECORD_COMPLAINT = rule("complaint.record", *HQ_SERVICE)
RESPOND_COMPLAINT = rule("complaint.respond", *AGENCY_EDITORS)
CLOSE_COMPLAINT = rule("complaint.close", *HQ_SERVICE)

# --- parts supply --------------------------------------------------------------------------------
SUBMIT_REQUEST = rule("parts_request.submit", *AGENCY_EDITORS)
DECIDE_REQUEST = rule("parts_request.decide", *HQ_PARTS)
SHIP_REQUEST = rule("parts_request.ship", *HQ_PARTS)
RECEIVE_REQUEST = rule("parts_request.receive", *AGENCY_EDITORS)
SHIP_RETURN = rule("part_return.ship", *AGENCY_EDITORS)
INSPECT_RETURN = rule("part_return.inspect", *HQ_PARTS)

# --- catalogs ------------------------------------------------------------------------------------
EDIT_CATALOG = {kind: rule(f"{kind}.edit", *roles) for kind, roles in CATALOG_EDITORS.items()}
IMPORT_CATALOG = {kind: rule(f"{kind}.import", *roles, system=True)
                  for kind, roles in CATALOG_EDITORS.items()}
