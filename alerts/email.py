"""Email over SMTP: a multipart/alternative message, plain text and HTML with the same content."""

from __future__ import annotations

import html
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from ssl import SSLContext, create_default_context

from alerts.base import failed
from alerts.format import doc_line, headline, latency, numbers, one_line, stamp, web_url
from infra.errors import DeliveryError
from streams.records import Alert, Delivery, utcnow

log = logging.getLogger(__name__)

MAX_EVIDENCE = 20


def _numbers(alert: Alert, now: datetime) -> list[tuple[str, str]]:
    rows = [*numbers(alert), ("Fired", stamp(alert.fired_at))]
    if alert.resolved_at is not None:
        rows.append(("Resolved", stamp(alert.resolved_at)))
    lag = latency(alert, now)
    if lag is not None:
        rows.append(("Published to alert", lag))
    if alert.sources:
        rows.append(("Sources", ", ".join(alert.sources)))
    if alert.model_version:
        rows.append(("Model", alert.model_version))
    rows.append(("Alert id", alert.alert_id))
    return rows


def plain_body(alert: Alert, now: datetime | None = None) -> str:
    """Render the plain-text part.

    Args:
        now: when the alert is sent, for the latency; the current time by default.
    """
    now = now or utcnow()
    lines = [headline(alert), ""]
    lines += [f"{label}: {value}" for label, value in _numbers(alert, now)]
    if alert.explanation.strip():
        lines += ["", alert.explanation.strip()]
    if alert.evidence:
        lines += ["", "Top documents:"]
        for doc in alert.evidence[:MAX_EVIDENCE]:
            lines.append(f"- {one_line(doc.title or doc.doc_id)}")
            lines.append(f"  {doc_line(doc, doc.source)}")
            if url := web_url(doc.url):
                lines.append(f"  {url}")
        if len(alert.evidence) > MAX_EVIDENCE:
            lines.append(f"+{len(alert.evidence) - MAX_EVIDENCE} more documents")
    return "\n".join(lines) + "\n"


def html_body(alert: Alert, now: datetime | None = None) -> str:
    """Render the HTML part; every value is escaped with `html.escape`.

    Args:
        now: when the alert is sent, for the latency; the current time by default.
    """
    now = now or utcnow()
    e = html.escape
    rows = "".join(
        f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>'
        for label, value in _numbers(alert, now)
    )
    parts = [f"<h2>{e(headline(alert))}</h2>", f"<table>{rows}</table>"]
    if alert.explanation.strip():
        parts.append(f'<p style="white-space: pre-wrap">{e(alert.explanation.strip())}</p>')
    if alert.evidence:
        items = []
        for doc in alert.evidence[:MAX_EVIDENCE]:
            title = e(one_line(doc.title or doc.doc_id))
            url = web_url(doc.url)
            link = f'<a href="{e(url)}">{title}</a>' if url else title
            items.append(f"<li>{link}<br><small>{e(doc_line(doc, doc.source))}</small></li>")
        if len(alert.evidence) > MAX_EVIDENCE:
            items.append(f"<li>+{len(alert.evidence) - MAX_EVIDENCE} more documents</li>")
        parts.append(f"<h3>Top documents</h3><ul>{''.join(items)}</ul>")
    body = "\n".join(parts)
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>'
    return f"{head}\n{body}\n</body></html>\n"


def build(
    alert: Alert, sender: str, recipients: Sequence[str], now: datetime | None = None
) -> EmailMessage:
    """Build the message: subject, addresses, a plain-text part and an HTML alternative.

    Args:
        now: when the alert is sent, for the latency; the current time by default.
    """
    now = now or utcnow()
    domain = sender.rpartition("@")[2] or "surveil.invalid"
    msg = EmailMessage()
    # The header API refuses line breaks; one_line keeps a hostile rule name from trying.
    msg["Subject"] = one_line(headline(alert))
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(now.timestamp(), usegmt=True)
    # Stable per alert and state, so a retried delivery is recognisably the same mail.
    msg["Message-ID"] = f"<{alert.alert_id}.{alert.state}@{domain}>"
    msg["X-Surveil-Fingerprint"] = alert.fingerprint
    msg.set_content(plain_body(alert, now))
    msg.add_alternative(html_body(alert, now), subtype="html")
    return msg


@dataclass
class SmtpNotifier:
    """Send alerts by email over SMTP.

    Args:
        host: the SMTP server.
        port: its port (25 or 587 with starttls, 465 with ssl).
        sender: the From address.
        recipients: the To addresses.
        username: the login, when the server asks for one (needs starttls or ssl).
        password: the password (a secret, never shown).
        starttls: upgrade the connection with STARTTLS before anything else.
        ssl: speak TLS from the start (SMTPS).
        timeout: seconds before a connection or a command times out.
        tls_context: certificates and checks for TLS; the system's defaults when None.

    Raises:
        ValueError: both starttls and ssl, credentials without either, or no recipients.
    """

    name = "email"
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    _: KW_ONLY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0
    tls_context: SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            msg = "choose starttls or ssl, not both"
            raise ValueError(msg)
        if self.username is not None and not (self.starttls or self.ssl):
            msg = "SMTP credentials need starttls=True or ssl=True; they would travel in clear"
            raise ValueError(msg)
        if not self.recipients:
            msg = "no recipients"
            raise ValueError(msg)
        self.recipients = list(self.recipients)

    def send(self, alert: Alert) -> Delivery:
        """Send the alert once; report the server's refusal or the connection error."""
        try:
            refused = self._submit(build(alert, self.sender, self.recipients))
        except DeliveryError as exc:
            log.warning("email delivery to %s:%d failed: %s", self.host, self.port, exc.detail)
            return failed(exc)
        detail = f"refused: {_refusals(refused)}" if refused else ""
        return Delivery(channel=self.name, ok=True, status=250, detail=detail)

    def _submit(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Hand the message to the server; return the recipients it refused.

        Raises:
            DeliveryError: the server refused the message or every recipient (permanent on
                a 5xx reply), or could not be reached.
        """
        try:
            return self._converse(message)
        except smtplib.SMTPResponseException as exc:
            detail = f"{type(exc).__name__}: {_text(exc.smtp_error)}"
            raise _error(detail, exc.smtp_code, permanent=exc.smtp_code >= 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = f"all recipients refused: {_refusals(exc.recipients)}"
            raise _error(detail, None, permanent=min(codes, default=500) >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused connections, timeouts and TLS failures (ssl.SSLError).
            detail = f"{type(exc).__name__}: {exc}"
            raise _error(detail, None, permanent=False) from exc

    def _converse(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        context = self.tls_context or create_default_context()
        client = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            if self.ssl
            else smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        )
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.username is not None:
                client.login(self.username, self.password or "")
            return client.send_message(message, self.sender, self.recipients)


def _error(detail: str, status: int | None, *, permanent: bool) -> DeliveryError:
    return DeliveryError(detail[:300], channel="email", status=status, permanent=permanent)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr} {code} {_text(reason)}" for addr, (code, reason) in refused.items())
