"""Service-fee settlement: rate cards, monthly claims, checks, review, payment and appeals."""


def init_app(app) -> None:
    from settlement import cli, demo, models, views_admin, views_review, widgets  # noqa: F401 - models: the tables  # noqa: F401 - their routes
    from settlement.kinds import KIND_LABELS
    from settlement.states import (
        APPEAL_LABELS,
        DECISION_LABELS,
        EVENT_LABELS,
        STATUS_BADGES,
        STATUS_LABELS,
        stage_label,
    )
    from settlement.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from settlement import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()

    @app.context_processor
    def settlement_labels():
        from settlement import rules

        return {"stl_status_labels": STATUS_LABELS, "stl_status_badges": STATUS_BADGES,
                "stl_decision_labels": DECISION_LABELS, "stl_kind_labels": KIND_LABELS,
                "stl_appeal_labels": APPEAL_LABELS, "stl_event_labels": EVENT_LABELS,
                "stl_stage": stage_label, "stl_exception_labels": rules.EXCEPTION_LABELS,
                "stl_reason_labels": rules.REASON_LABELS, "stl_rule_labels": rules.RULE_LABELS,
                "stl_disposition_labels": rules.DISPOSITION_LABELS}
