"""How the audit log names the network's records: agencies by code, regions, provinces,
product lines and models by code and name."""
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.audit.subjects import Field, day, ref, state, subject
from tenants.models import (
    AGENCY_TYPE_LABELS,
    STATUS_LABELS,
    Agency,
    ProductLine,
    ProductModel,
    Province,
    Region,
)


def _named(model):
    """Code and name in the reader's language: "EAST 华东大区"."""
    def label():
        zh = str(get_locale() or "zh").startswith("zh")
        return select(model.id, model.code + " " + (model.name_zh if zh else model.name_en))
    return label


def register() -> None:
    subject("Agency", select(Agency.id, Agency.code), "tenants.agency", "agency_id",
            noun=_l("Agency"), model=Agency,
            search=select(Agency.id, Agency.code + " " + Agency.legal_name),
            fields={
                "code": Field(_l("Agency code")),
                "legal_name": Field(_l("Legal name")),
                "agency_type": state("agency.type", _l("Type"), AGENCY_TYPE_LABELS),
                "status": state("agency.status", _l("Status"), STATUS_LABELS),
                "region_id": ref("Region", _l("Region")),
                "province_id": ref("Province", _l("Province")),
                "city": Field(_l("City")),
                "address": Field(_l("Address")),
                "contact_name": Field(_l("Contact person")),
                "contact_phone": Field(_l("Contact phone")),
                "tier": Field(_l("Tier (stars)")),
                "service_types": Field(_l("Authorized service types")),
                "product_line_ids": ref("ProductLine", _l("Authorized product lines")),
                "auth_valid_from": day(_l("Authorized from")),
                "auth_valid_to": day(_l("Authorized until")),
                "bank_name": Field(_l("Bank")),
                "required_l2_engineers": Field(_l("Required L2 engineers per product line")),
                "email_domains": Field(_l("Account e-mail domains")),
            })
    subject("Region", _named(Region), "tenants.region_edit", "region_id", noun=_l("Region"),
            fields=_NAMES)
    subject("Province", _named(Province), "tenants.province_edit", "province_id",
            noun=_l("Province"), fields={**_NAMES, "region_id": ref("Region", _l("Region"))})
    subject("ProductLine", _named(ProductLine), "tenants.product_line_edit", "product_line_id",
            noun=_l("Product line"), model=ProductLine, fields=_NAMES)
    subject("ProductModel", select(ProductModel.id, ProductModel.code),
            "tenants.product_model_edit", "model_id", noun=_l("Model"),
            fields={"code": Field(_l("Model code")), "name": Field(_l("Model name")),
                    "warranty_months": Field(_l("Warranty (months)")),
                    "product_line_id": ref("ProductLine", _l("Product line"))})


_NAMES = {"name_zh": Field(_l("Name (Chinese)")), "name_en": Field(_l("Name (English)"))}
