"""The service network: regions, provinces, product lines, agencies and their accounts."""


def init_app(app) -> None:
    from portal import labels
    from portal.auth.roles import ROLE_LABELS
    from tenants import cli, demo, widgets
    from tenants.models import AGENCY_TYPE_LABELS, SERVICE_TYPE_LABELS, STATUS_LABELS
    from tenants.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from tenants import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()

    labels.register("agency.status", STATUS_LABELS)
    labels.register("agency.type", AGENCY_TYPE_LABELS)
    labels.register("service_type", SERVICE_TYPE_LABELS)
    labels.register("role", ROLE_LABELS)
