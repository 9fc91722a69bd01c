"""Engineer certification: engineers, programs, exam sessions and certificates."""


def init_app(app) -> None:
    # models: the tables; policy: who may do what; views_*: their routes join the blueprint.
    from certification import (  # noqa: F401
        cli,
        demo,
        models,
        policy,
        profile,
        views_certificates,
        views_exams,
        widgets,
    )
    from certification.states import register_labels
    from certification.views import bp

    app.register_blueprint(bp)
    register_labels(app)
    cli.init_app(app)
    demo.register()
    from certification import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()
    profile.register()
