"""Chinese texts use full-width punctuation: "已提交，总部将审核：" not "已提交,总部将审核:".

ASCII punctuation stays where it belongs: inside placeholders (%(n)s), in times (09:30), in codes
and in English words quoted in a Chinese text.
"""
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
MIXED = [
    re.compile(rf"{CJK}[,;:!?]"),      # 已提交,
    re.compile(rf"[,;:!?]\s*{CJK}"),   # 原因: 请
    re.compile(rf"\({CJK}"),           # (同一
    re.compile(rf"{CJK}\)"),           # 申报)
]
CATALOGS = sorted(TRANSLATIONS.glob("*/zh_CN/LC_MESSAGES/messages.po"))


def half_width_in(text: str) -> list[str]:
    return [m.group(0) for rx in MIXED for m in rx.finditer(text)]


@pytest.mark.parametrize("po", CATALOGS, ids=[p.parts[-4] for p in CATALOGS])
def test_chinese_texts_use_full_width_punctuation(po):
    with open(po, "rb") as f:
        catalog = read_po(f, locale="zh_CN")
    offending = []
    for message in catalog:
        strings = message.string if message.pluralizable else (message.string,)
        for text in strings:
            if text and half_width_in(text):
                offending.append(f"{message.id!r}: {text!r}")
    assert not offending, "half-width punctuation in Chinese text:\n" + "\n".join(offending)


def test_the_check_tells_mixed_from_correct():
    assert half_width_in("已提交,总部将审核")
    assert half_width_in("疑似重复(同一序列号)")
    assert half_width_in("原因: 请补充")
    assert not half_width_in("已提交，总部将审核：%(n)s 条（09:30）")
    assert not half_width_in("备件 %(code)s (x%(qty)s)")
