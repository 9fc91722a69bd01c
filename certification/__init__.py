"""Engineer certification: engineers, programs, exam sessions and certificates."""


def init_app(app) -> None:
    from certification import models  # noqa: F401 - register the tables
    from certification.views import bp

    app.register_blueprint(bp)
    from certification import demo

    demo.register()
