"""Personal data shown to those who may recognise a person but not learn their details."""


def mask_name(name: str | None) -> str:
    """王小明 → 王*明, 王明 → 王*, John Smith → J********h: enough to recognise, not to learn."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" if name else ""
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str | None) -> str:
    """13812345678 → 138****5678; short numbers are all stars."""
    digits = (phone or "").strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:3] + "*" * max(len(digits) - 7, 1) + digits[-4:]


def mask_tail(value: str | None, keep: int = 4) -> str:
    """An account or id number: stars, then its last `keep` characters."""
    value = (value or "").strip()
    if len(value) <= keep:
        return "*" * len(value)
    return "*" * (len(value) - keep) + value[-keep:]
