"""A real SMTP server for the e-mail tests: aiosmtpd on 127.0.0.1, in a thread.

The outbox talks to it through Flask-Mailman's SMTP backend exactly as it would to the
company's relay, so a test sees what a recipient's mail server would see: the envelope, the
headers, the text and HTML parts. A server can refuse chosen recipients (``550``), and
:func:`closed_port` names a port nobody listens on (a relay that is down); a server started
later on that port is the relay coming back. :func:`silent_port` is a relay that hangs.
"""
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def silent_port():
    """A port that accepts connections and never says a word (a hung relay): the client waits
    for the greeting until its timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@dataclass
class Received:
    """One accepted message: its envelope, the parsed message, the client's address (one per
    SMTP connection)."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: tuple

    def header(self, name: str) -> str | None:
        """A header's value; a long one may be folded before its value (`Message-ID:` CRLF
        SP `<…>`), which the parser keeps as a leading space."""
        value = self.message[name]
        return None if value is None else str(value).strip()

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


@dataclass
class Handler:
    """aiosmtpd's handler: keeps what it accepts; refuses the addresses in `refused`."""

    received: list[Received] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message,
                                      tuple(session.peer)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """``with SmtpServer() as server:`` a listening server; ``server.received`` its messages.

    `port`: listen there (a :func:`closed_port` the portal was told about); else a free one.
    """

    def __init__(self, port: int | None = None, refuse=()):
        self.port = port or closed_port()
        self.handler = Handler(refused={address.lower() for address in refuse})
        self._controller = Controller(self.handler, hostname=HOST, port=self.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def refuse(self, *addresses: str) -> None:
        self.handler.refused = {address.lower() for address in addresses}

    def to(self, address: str) -> list[Received]:
        """The messages delivered to `address`."""
        return [r for r in self.received if address.lower() in map(str.lower, r.rcpt_tos)]

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
