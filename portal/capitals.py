"""Amounts in Chinese capitals (大写金额) as the People's Bank writes them on payment documents.

cn2an does the reading; two places where it departs from the writing rules of 《支付结算办法》
(附件一《正确填写票据和结算凭证的基本规定》) are corrected here:

- An amount that ends at 角 is closed with 整 (壹角整, 壹仟零壹拾元伍角整): the rules require
  整 after 元 and allow it after 角; writing it always leaves no room to add 分 afterwards.
  Nothing follows 分.
- A zero 万 group between 亿 and a non-zero thousands digit is written 零
  (200,002,020 → 贰亿零贰仟零贰拾元整; cn2an writes 贰亿贰仟…, which drops a zero the rules
  require: "阿拉伯数字中间有 0 时，中文大写金额要写零字").

Choices the rules leave open, made once: no 零 between 元 and a non-zero 角 when the units
digit is 0 (壹佰元壹角整; rule 三 allows one 零 or none); an amount below one yuan starts at
its first digit (0.01 → 壹分, 0.10 → 壹角整: there is no 元 digit to write and "零元" adds
nothing a forger could not); 0 is 零元整; a negative amount (a claim whose deductions exceed
its payments) is written 负… (and −0 as 零元整). The caller prints 人民币 in front.
"""
from decimal import Decimal, InvalidOperation

import cn2an

FEN = Decimal("0.01")
# cn2an reads 16 digits at most; the portal's money holds 10 before the point. Above 1 万亿
# the 万亿 group would need the same zero rule as 亿: refused rather than guessed.
LIMIT = Decimal(10) ** 12


def rmb_capitals(amount: Decimal) -> str:
    """`amount` (yuan, a whole number of fen) in Chinese capitals: 壹仟零壹拾元伍角整.

    Raises TypeError for anything but a Decimal or an int (a float is not exact), ValueError
    for a fraction of a fen, NaN, infinity, or 1 万亿 yuan or more.
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"an amount in capitals is a Decimal, not {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValueError(f"not an amount: {amount}")
    try:
        fen = amount.quantize(FEN)
    except InvalidOperation:
        raise ValueError(f"amount out of range: {amount}") from None
    if fen != amount:
        raise ValueError(f"{amount} is not a whole number of fen")
    if abs(fen) >= LIMIT:
        raise ValueError(f"{amount} is too large for capitals (1 万亿 yuan or more)")
    sign = "负" if fen < 0 else ""
    fen = abs(fen)
    text = cn2an.an2cn(f"{fen:f}", "rmb")
    yuan = int(fen)
    if yuan >= 10**8 and (yuan // 10**4) % 10**4 == 0 and yuan % 10**4 >= 1000:
        text = text.replace("亿", "亿零", 1)
    if text.endswith("角"):
        text += "整"
    return sign + text
