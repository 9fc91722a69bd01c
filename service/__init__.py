"""Service work: work orders, revisits, complaints, catalogs, parts requests and returns."""


def init_app(app) -> None:
    from service.views import bp

    app.register_blueprint(bp)
