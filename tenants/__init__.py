"""The service network: regions, provinces, product lines, agencies and their accounts."""


def init_app(app) -> None:
    from portal.auth.roles import ROLE_LABELS
    from tenants import cli, demo, widgets
    from tenants.models import AGENCY_TYPE_LABELS, SERVICE_TYPE_LABELS, STATUS_LABELS
    from tenants.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from tenants import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()

    @app.context_processor
    def labels():
        return {"status_labels": STATUS_LABELS, "type_labels": AGENCY_TYPE_LABELS,
                "service_type_labels": SERVICE_TYPE_LABELS,
                "role_labels": {r.value: label for r, label in ROLE_LABELS.items()}}
