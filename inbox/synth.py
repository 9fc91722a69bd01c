"""Synthetic network, workplace: what a working network's inboxes hold, made the way the
portal makes it (set-based): HQ's announcement to every agency asking for acknowledgement, and
the tick's reminders and escalations over the network's dates. The time each takes is kept
with the network's timings."""
import time
from datetime import timedelta

from inbox.announcements import publish
from inbox.reminders import tick
from portal import synth
from portal.clock import local_today
from portal.commit import committed
from portal.tenancy import unscoped


def build(net: synth.Network) -> None:
    """Nothing in bulk: the workplace's rows follow from the other areas' (after the commit)."""


def fill(net: synth.Network) -> None:
    with unscoped("the synthetic network fills every inbox"):
        started = time.monotonic()
        with committed():
            publish(None, {"title": "年度服务政策更新", "body": "请阅读并确认新的服务政策。",
                           "audience": "agencies", "staff_too": True, "requires_ack": True,
                           "ack_by": local_today() + timedelta(days=14)}, acting_user=None)
        net.timings["workplace: announcement to every agency"] = round(
            time.monotonic() - started, 2)
        started = time.monotonic()
        with committed():
            made = tick()
        net.timings["workplace: tick"] = round(time.monotonic() - started, 2)
        net.data["workplace"] = {"reminders": sum(v for k, v in made.items()
                                                   if k != "offers_expired")}


synth.register("inbox", build, order=90, after_commit=fill)
