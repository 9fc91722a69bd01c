"""Certification pages (engineers, programs, sessions, certificates, public check)."""
from flask import Blueprint

bp = Blueprint("certification", __name__)
