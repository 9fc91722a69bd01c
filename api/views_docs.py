"""The OpenAPI document and its documentation page (Swagger UI, served from the project)."""
from flask import Blueprint, jsonify, render_template

from portal.auth.access import public

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
@public
def openapi():
    from api import api

    return jsonify(api.spec.to_dict())


@bp.get("/docs")
@public
def docs():
    return render_template("api/docs.html")
