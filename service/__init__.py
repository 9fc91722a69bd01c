"""Service work: work orders, revisits, complaints, catalogs, parts requests and returns."""


def init_app(app) -> None:
    from portal import labels

    # The view modules add their routes to the one blueprint when imported.
    from service import (  # noqa: F401
        cli,
        demo,
        models,
        profile,
        views_catalog,
        views_imports,
        views_quality,
        views_supply,
        widgets,
    )
    from service.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from service import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()
    profile.register()

    labels.register("service.return_status", models.RETURN_STATUS_LABELS)
    labels.register("service.complaint_status", models.COMPLAINT_STATUS_LABELS)
    labels.register("service.request_status", models.REQUEST_STATUS_LABELS)
