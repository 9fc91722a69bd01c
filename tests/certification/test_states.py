"""Validity arithmetic, certificate states at their boundaries, masking, ID numbers."""
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from certification.services import id_number_is_valid
from certification.states import CertificateState, is_valid_on, state_of, validity_end
from portal.clock import add_months
from portal.masking import mask_name


def cert(valid_from=date(2026, 1, 1), valid_to=date(2027, 12, 31), revoked_on=None):
    return SimpleNamespace(valid_from=valid_from, valid_to=valid_to, revoked_on=revoked_on)


@pytest.mark.parametrize("start,months,end", [
    (date(2026, 1, 15), 24, date(2028, 1, 14)),
    (date(2026, 1, 1), 24, date(2027, 12, 31)),
    (date(2026, 1, 31), 1, date(2026, 2, 27)),    # no 31 February: the 28th, minus a day
    (date(2024, 2, 29), 12, date(2025, 2, 27)),   # leap day
    (date(2026, 11, 30), 3, date(2027, 2, 27)),
])
def test_validity_ends_the_day_before_the_anniversary(start, months, end):
    assert validity_end(start, months) == end


def test_add_months_crosses_years():
    assert add_months(date(2026, 11, 15), 14) == date(2028, 1, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


@pytest.mark.parametrize("today,state", [
    (date(2025, 12, 31), CertificateState.NOT_YET_VALID),
    (date(2026, 1, 1), CertificateState.VALID),
    (date(2027, 10, 31), CertificateState.VALID),       # 61 days left
    (date(2027, 11, 1), CertificateState.EXPIRING),     # 60 days left
    (date(2027, 12, 31), CertificateState.EXPIRING),    # the last valid day
    (date(2028, 1, 1), CertificateState.EXPIRED),       # the day after
])
def test_state_at_the_boundaries(today, state):
    assert state_of(cert(), today) == state


def test_revocation_applies_from_its_day():
    revoked = cert(revoked_on=date(2026, 5, 10))
    assert state_of(revoked, date(2026, 5, 9)) == CertificateState.VALID
    assert state_of(revoked, date(2026, 5, 10)) == CertificateState.REVOKED
    assert state_of(revoked, date(2030, 1, 1)) == CertificateState.REVOKED
    assert is_valid_on(revoked, date(2026, 5, 9))
    assert not is_valid_on(revoked, date(2026, 5, 10))


def test_renewed_beats_expiry_but_not_revocation():
    assert state_of(cert(), date(2028, 5, 1), renewed=True) == CertificateState.RENEWED
    assert state_of(cert(revoked_on=date(2026, 2, 1)), date(2026, 3, 1),
                    renewed=True) == CertificateState.REVOKED


@pytest.mark.parametrize("name,masked", [
    ("王小明", "王*明"), ("王明", "王*"), ("欧阳小明", "欧**明"), ("", ""), ("李", "*"),
    ("John Smith", "J********h"),
])
def test_names_are_masked(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("number,valid", [
    ("11010519491231002X", True),
    ("110105194912310021", False),   # wrong check character
    ("11010519491231002", False),    # too short
    ("1101051949123100AX", False),
])
def test_id_numbers_carry_their_check_character(number, valid):
    assert id_number_is_valid(number) is valid


def test_expiry_window_is_sixty_days():
    start = date(2026, 1, 1)
    c = cert(start, start + timedelta(days=100))
    assert state_of(c, start + timedelta(days=39)) == CertificateState.VALID
    assert state_of(c, start + timedelta(days=40)) == CertificateState.EXPIRING
