"""The network's reference data a caller needs to fill a request: provinces and product
lines with their models (the same lists the hotline's form offers). Every role reads them."""
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.core import api_allow
from portal.auth.roles import Role
from portal.extensions import db
from tenants.models import ProductLine, Province

blp = Blueprint("api_reference", __name__, url_prefix="/api/v1/reference",
                description="Provinces, product lines and models (reference data).")


class ProvinceOut(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    region_id = fields.Integer(required=True)


class ModelOut(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    warranty_months = fields.Integer(required=True)


class ProductLineOut(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    is_active = fields.Boolean(required=True)
    models = fields.List(fields.Nested(ModelOut), required=True)


class ProvinceList(Schema):
    items = fields.List(fields.Nested(ProvinceOut), required=True)


class ProductLineList(Schema):
    items = fields.List(fields.Nested(ProductLineOut), required=True)


@blp.route("/provinces")
@api_allow(*Role)
@blp.response(200, ProvinceList)
def provinces():
    """Every province, by code."""
    return {"items": db.session.scalars(select(Province).order_by(Province.code)).all()}


@blp.route("/product-lines")
@api_allow(*Role)
@blp.response(200, ProductLineList)
def product_lines():
    """Every product line with its models, by code."""
    lines = db.session.scalars(select(ProductLine).options(selectinload(ProductLine.models))
                               .order_by(ProductLine.code)).all()
    return {"items": lines}
