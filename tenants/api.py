"""What the areas above may use of the network area (they import nothing else of its
services): the agency lifecycle, for evaluation's accepted proposals."""
from tenants.services import change_agency_status

__all__ = ["change_agency_status"]
