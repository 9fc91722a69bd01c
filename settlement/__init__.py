"""Service-fee settlement: rate cards, monthly claims, checks, review, payment and appeals."""


def init_app(app) -> None:
    from portal import labels
    from settlement import cli, demo, models, profile, views_admin, views_review, widgets  # noqa: F401 - models: the tables  # noqa: F401 - their routes
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
    profile.register()

    from settlement import rules

    labels.register("settlement.status", STATUS_LABELS, badges=STATUS_BADGES)
    labels.register("settlement.decision", DECISION_LABELS)
    labels.register("settlement.line_kind", KIND_LABELS)
    labels.register("settlement.appeal", APPEAL_LABELS)
    labels.register("settlement.event", EVENT_LABELS)
    labels.register("settlement.exception", rules.EXCEPTION_LABELS)
    labels.register("settlement.reason", rules.REASON_LABELS)
    labels.register("settlement.rule", rules.RULE_LABELS)
    labels.register("settlement.disposition", rules.DISPOSITION_LABELS)
    app.add_template_global(stage_label, "settlement_stage")
