"""Email: the message, and delivery to a local aiosmtpd server (plain, STARTTLS + AUTH, SMTPS)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from alerts.email import SmtpNotifier, build, plain_body
from streams.records import Alert, DocRef

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script> "quoted" & <b>bold</b>'
SENDER = "surveil@example.com"
TO = ["risk@example.com", "desk@example.com"]
LOGIN = ("surveil", "s3cret")


def alert(**extra: Any) -> Alert:
    evidence = (
        DocRef(
            doc_id="doc0001",
            title=HOSTILE,
            url='https://example.com/a?x=1&y="><script>',
            source="wire",
            published_at=T0 - timedelta(minutes=5),
            score=-0.8,
        ),
        DocRef(
            doc_id="doc0002",
            title="no link",
            url="javascript:alert(1)",
            source="sec",
            published_at=T0 - timedelta(minutes=9),
            score=-0.4,
        ),
    )
    fields: dict[str, Any] = {
        "alert_id": "a" * 32,
        "fingerprint": "f" * 32,
        "rule": "mean_score_below",
        "severity": "critical",
        "ticker": "AAPL",
        "fired_at": T0,
        "value": -0.52,
        "threshold": -0.3,
        "window_start": T0 - timedelta(hours=1),
        "window_end": T0,
        "documents": 2,
        "explanation": HOSTILE,
        "evidence": evidence,
        "state": "firing",
        "zscore": -2.4,
        "model_version": "finbert-v3",
        "trigger_published_at": T0 - timedelta(minutes=2, seconds=13),
    }
    return Alert(**(fields | extra))


class Inbox:
    """An aiosmtpd handler that keeps what it receives and can refuse a recipient."""

    def __init__(self, refuse: str = "") -> None:
        self.envelopes: list[Envelope] = []
        self._refuse = refuse

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self._refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(handler: Inbox, **kwargs: Any) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate and key for 127.0.0.1, in one PEM file."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS variants need the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    both = folder / "both.pem"
    both.write_text(crt.read_text() + key.read_text())
    return both


def server_tls(cert: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert)
    return context


def client_tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    expected = tuple(part.encode() for part in LOGIN)
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == expected
    return AuthResult(success=ok, handled=False)


def test_message_has_both_parts_with_the_same_content() -> None:
    msg = build(alert(), SENDER, TO, now=T0)
    assert msg["Subject"] == "[FIRING] AAPL mean_score_below (critical)"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    for needle in ("-0.520", "-2.40", "-0.300", "2m 13s", "finbert-v3", "wire", "sec"):
        assert needle in text and needle in markup
    assert HOSTILE in text  # plain text needs no escaping
    assert 'https://example.com/a?x=1&y="><script>' in text and "javascript:" not in text


def test_html_is_escaped() -> None:
    msg = build(alert(), SENDER, TO, now=T0)
    html = msg.get_body(("html",))
    assert html is not None
    markup = html.get_content()
    assert "<script>" not in markup and "<b>bold</b>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; &lt;b&gt;" in markup
    assert '<a href="https://example.com/a?x=1&amp;y=&quot;&gt;&lt;script&gt;">' in markup
    assert "javascript:" not in markup


def test_plain_body_without_zscore_or_trigger_time() -> None:
    text = plain_body(alert(zscore=None, trigger_published_at=None), now=T0)
    assert "Z-score" not in text and "Published to alert" not in text


def test_delivers_to_a_local_server() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        delivery = SmtpNotifier("127.0.0.1", port, SENDER, TO, timeout=5).send(alert())
    assert (delivery.channel, delivery.ok, delivery.status) == ("email", True, 250)
    [envelope] = inbox.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == (SENDER, TO)
    received = inbox.message()
    assert received["Subject"] == "[FIRING] AAPL mean_score_below (critical)"
    assert received["To"] == ", ".join(TO)
    assert [p.get_content_type() for p in received.iter_parts()] == ["text/plain", "text/html"]
    html = received.get_body(("html",))
    assert html is not None and "&lt;script&gt;" in html.get_content()


def test_starttls_then_login(cert: Path) -> None:
    inbox = Inbox()
    server = {
        "tls_context": server_tls(cert),
        "require_starttls": True,
        "auth_require_tls": True,
        "authenticator": authenticate,
    }
    with smtp_server(inbox, **server) as port:
        notifier = SmtpNotifier(
            "127.0.0.1",
            port,
            SENDER,
            TO,
            username=LOGIN[0],
            password=LOGIN[1],
            starttls=True,
            timeout=5,
            tls_context=client_tls(cert),
        )
        delivery = notifier.send(alert())
        wrong = SmtpNotifier(
            "127.0.0.1",
            port,
            SENDER,
            TO,
            username=LOGIN[0],
            password=LOGIN[1][::-1],
            starttls=True,
            timeout=5,
            tls_context=client_tls(cert),
        ).send(alert())
    assert (delivery.ok, delivery.status) == (True, 250)
    assert len(inbox.envelopes) == 1
    assert (wrong.ok, wrong.status) == (False, 535)
    assert "SMTPAuthenticationError" in wrong.detail


def test_smtps(cert: Path) -> None:
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=server_tls(cert)) as port:
        notifier = SmtpNotifier(
            "127.0.0.1", port, SENDER, TO, ssl=True, timeout=5, tls_context=client_tls(cert)
        )
        delivery = notifier.send(alert())
    assert (delivery.ok, len(inbox.envelopes)) == (True, 1)


def test_untrusted_certificate_is_a_failed_delivery(cert: Path) -> None:
    with smtp_server(Inbox(), tls_context=server_tls(cert)) as port:
        delivery = SmtpNotifier("127.0.0.1", port, SENDER, TO, starttls=True, timeout=5).send(
            alert()
        )
    assert (delivery.ok, delivery.status) == (False, None)
    assert "SSLCertVerificationError" in delivery.detail


def test_refused_recipients() -> None:
    inbox = Inbox(refuse="desk@example.com")
    with smtp_server(inbox) as port:
        partly = SmtpNotifier("127.0.0.1", port, SENDER, TO, timeout=5).send(alert())
        wholly = SmtpNotifier("127.0.0.1", port, SENDER, ["desk@example.com"], timeout=5).send(
            alert()
        )
    assert (partly.ok, inbox.envelopes[0].rcpt_tos) == (True, ["risk@example.com"])
    assert partly.detail.startswith("refused: desk@example.com 550")
    assert (wholly.ok, wholly.status) == (False, None)
    assert "desk@example.com 550" in wholly.detail


def test_unreachable_server_is_a_failed_delivery() -> None:
    delivery = SmtpNotifier("127.0.0.1", free_port(), SENDER, TO, timeout=5).send(alert())
    assert (delivery.channel, delivery.ok, delivery.status) == ("email", False, None)
    assert "ConnectionRefusedError" in delivery.detail


def test_credentials_need_tls() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpNotifier("127.0.0.1", 25, SENDER, TO, username=LOGIN[0], password=LOGIN[1])


def test_the_window_shows_both_dates_when_they_differ() -> None:
    day = alert(window_start=T0 - timedelta(days=1))
    msg = build(day, SENDER, TO, now=T0)
    plain, markup = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and markup is not None
    window = "2026-03-01 13:00 to 2026-03-02 13:00 UTC"
    assert f"Window: {window}\n" in plain.get_content()
    assert f'<th align="left">Window</th><td>{window}</td>' in markup.get_content()
    assert "Window: 2026-03-02 12:00 to 13:00 UTC\n" in plain_body(alert(), now=T0)


def test_a_resolved_mail_says_when_the_condition_cleared() -> None:
    cleared = T0 + timedelta(minutes=7, seconds=30)
    msg = build(alert(state="resolved", resolved_at=cleared), SENDER, TO, now=cleared)
    assert msg["Subject"] == "[RESOLVED] AAPL mean_score_below (critical)"
    plain, markup = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and markup is not None
    assert "Fired: 2026-03-02 13:00:00 UTC\nResolved: 2026-03-02 13:07:30 UTC\n" in (
        plain.get_content()
    )
    assert '<th align="left">Resolved</th><td>2026-03-02 13:07:30 UTC</td>' in (
        markup.get_content()
    )
    assert "Resolved" not in plain_body(alert(), now=T0)
