"""Service pages."""
from flask import Blueprint

bp = Blueprint("service", __name__)
