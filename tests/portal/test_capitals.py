"""Amounts in Chinese capitals (大写金额): the People's Bank's writing rules, checked on a table
written out by hand and on generated amounts against a small reference written here."""
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.capitals import rmb_capitals

D = Decimal

# Each expected string was spelled out digit by digit from the rules of 《支付结算办法》附件一
# (整 after 元 or 角; 零 for zeros in the middle; 零 after 元 when 角 is 0 and 分 is not).
TABLE = [
    ("0.01", "壹分"),
    ("0.10", "壹角整"),  # cn2an: 壹角
    ("1.00", "壹元整"),
    ("10.05", "壹拾元零伍分"),
    ("100000.00", "壹拾万元整"),
    ("1234567.89", "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
    # the rules' own examples (where they allow two spellings, the one without 零 after 元)
    ("1409.50", "壹仟肆佰零玖元伍角整"),
    ("6007.14", "陆仟零柒元壹角肆分"),
    ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "叁佰贰拾伍元零肆分"),
    # more edges
    ("1010.50", "壹仟零壹拾元伍角整"),  # cn2an: 壹仟零壹拾元伍角
    ("0.00", "零元整"),
    ("-0.00", "零元整"),
    ("0.05", "伍分"),
    ("0.99", "玖角玖分"),
    ("10.00", "壹拾元整"),
    ("110.00", "壹佰壹拾元整"),
    ("100.10", "壹佰元壹角整"),
    ("100010.00", "壹拾万零壹拾元整"),
    ("1000100.00", "壹佰万零壹佰元整"),
    ("10000000.01", "壹仟万元零壹分"),
    ("100000001.00", "壹亿零壹元整"),
    ("100010001.01", "壹亿零壹万零壹元零壹分"),
    ("200002020.00", "贰亿零贰仟零贰拾元整"),  # cn2an: 贰亿贰仟零贰拾元整 (a zero dropped)
    ("1000001000.10", "壹拾亿零壹仟元壹角整"),
    ("9999999999.99", "玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),  # Money's largest
    ("-5.30", "负伍元叁角整"),
    ("-1234.56", "负壹仟贰佰叁拾肆元伍角陆分"),
    ("12.3", "壹拾贰元叁角整"),  # fewer places are fine
    ("7", "柒元整"),
    ("1.230", "壹元贰角叁分"),  # three places, but a whole number of fen
]


@pytest.mark.parametrize("amount, expected", TABLE)
def test_the_table_of_amounts(amount, expected):
    assert rmb_capitals(D(amount)) == expected


def test_an_int_is_whole_yuan():
    assert rmb_capitals(42) == "肆拾贰元整"


@pytest.mark.parametrize("amount", [1.5, "1.50", None, True, [D("1")]])
def test_only_exact_amounts_are_written(amount):
    """A float is not an exact amount: refused, like text, rather than rounded."""
    with pytest.raises(TypeError):
        rmb_capitals(amount)


@pytest.mark.parametrize("amount", ["1.005", "0.001", "12.345", "NaN", "Infinity", "-Infinity",
                                    "1000000000000.00", "1E+30", "-1000000000000"])
def test_fractions_of_a_fen_and_impossible_amounts_are_refused(amount):
    """cn2an would write 12.345 as 壹拾贰元叁角肆分: a silently dropped 0.005."""
    with pytest.raises(ValueError):
        rmb_capitals(D(amount))


# --- an independent reference: the rules written out plainly --------------------------------

DIGITS = "零壹贰叁肆伍陆柒捌玖"


def _four(n: int) -> str:
    """A group of four digits (1–9999) without its leading zeros: 零 once per run of zeros
    inside it."""
    out, zero = "", False
    for unit, place in (("仟", 1000), ("佰", 100), ("拾", 10), ("", 1)):
        digit = n // place % 10
        if digit == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + DIGITS[digit] + unit
            zero = False
    return out


def _yuan(n: int) -> str:
    groups = []
    while n:
        n, group = divmod(n, 10000)
        groups.append(group)
    out, gap = "", False
    for i in reversed(range(len(groups))):
        if groups[i] == 0:
            gap = bool(out)
            continue
        # a zero between groups: an empty group, or a group below a thousand after a higher one
        if out and (gap or groups[i] < 1000):
            out += "零"
        out += _four(groups[i]) + ("", "万", "亿")[i]
        gap = False
    return out


def reference(fen: int) -> str:
    sign, fen = ("负" if fen < 0 else ""), abs(fen)
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    text = _yuan(yuan) + ("元" if yuan else "")
    if jiao == 0 and cents == 0:
        return sign + (text or "零元") + "整"
    if jiao:
        return sign + text + DIGITS[jiao] + "角" + (DIGITS[cents] + "分" if cents else "整")
    return sign + text + ("零" if yuan else "") + DIGITS[cents] + "分"


def test_the_reference_agrees_with_the_table():
    for amount, expected in TABLE:
        assert reference(int(D(amount) * 100)) == expected, amount


# Amounts built from groups of four digits that are empty, below a thousand or full, and from
# jiao and fen that are zero or not: the zeros the rules are about come up in every run.
GROUP = st.one_of(st.just(0), st.integers(1, 999), st.integers(1000, 9999))
CENTS = st.one_of(st.just(0), st.integers(1, 9), st.integers(1, 9).map(lambda j: j * 10),
                  st.integers(0, 99))
FEN_AMOUNTS = st.builds(lambda high, middle, low, cents, negative:
                        (-1 if negative else 1) * ((((high * 10**4) + middle) * 10**4 + low) * 100
                                                   + cents),
                        GROUP, GROUP, GROUP, CENTS, st.booleans())


@given(FEN_AMOUNTS)
# The amounts are built from five parts: on a busy machine drawing them can take a second.
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_capitals_follow_the_rules_for_any_amount(fen):
    assert rmb_capitals(D(fen).scaleb(-2)) == reference(fen)


@given(st.decimals(min_value=D("-9999999999.99"), max_value=D("9999999999.99"), places=2,
                   allow_nan=False, allow_infinity=False))
def test_every_amount_money_can_hold_is_written(amount):
    text = rmb_capitals(amount)
    assert text == reference(int(amount * 100))
    assert text.endswith(("整", "分")) and "零零" not in text
