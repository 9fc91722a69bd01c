"""Engineer certification: engineers, programs, exam sessions and certificates."""


def init_app(app) -> None:
    # models: the tables; views_*: their routes join the blueprint.
    from certification import (  # noqa: F401
        cli,
        demo,
        models,
        views_certificates,
        views_exams,
        widgets,
    )
    from certification.models import EDUCATION_LABELS
    from certification.states import (
        LEVEL_LABELS,
        NOMINATION_LABELS,
        RESULT_LABELS,
        SESSION_LABELS,
        STATE_BADGES,
        STATE_LABELS,
        state_of,
    )
    from certification.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from certification import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()

    @app.context_processor
    def certification_labels():
        return {"cert_state_labels": STATE_LABELS, "cert_state_badges": STATE_BADGES,
                "cert_level_labels": LEVEL_LABELS, "nomination_labels": NOMINATION_LABELS,
                "exam_result_labels": RESULT_LABELS, "session_labels": SESSION_LABELS,
                "education_labels": EDUCATION_LABELS, "certificate_state": certificate_state}

    def certificate_state(cert, today):
        """A loaded certificate's state (its `renewed_by` loaded with it, not one by one)."""
        return state_of(cert, today, renewed=cert.renewed_by is not None)
