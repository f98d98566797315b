"""Email over SMTP: a multipart/alternative message, plain text and HTML with the same content."""

from __future__ import annotations

import html
import logging
import smtplib
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from ssl import SSLContext, create_default_context

from alerts.format import doc_line, headline, latency, numbers, one_line, stamp, web_url
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


class SmtpNotifier:
    """Send alerts by email over SMTP.

    Args:
        host: the SMTP server.
        port: its port (25 or 587 with starttls, 465 with ssl).
        sender: the From address.
        recipients: the To addresses.
        username: the login, when the server asks for one (needs starttls or ssl).
        password: the password (a secret).
        starttls: upgrade the connection with STARTTLS before anything else.
        ssl: speak TLS from the start (SMTPS).
        timeout: seconds before a connection or a command times out.
        tls_context: certificates and checks for TLS; the system's defaults when None.
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout: float = 10.0,
        tls_context: SSLContext | None = None,
    ) -> None:
        if starttls and ssl:
            msg = "choose starttls or ssl, not both"
            raise ValueError(msg)
        if username is not None and not (starttls or ssl):
            msg = "SMTP credentials need starttls=True or ssl=True; they would travel in clear"
            raise ValueError(msg)
        if not recipients:
            msg = "no recipients"
            raise ValueError(msg)
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = list(recipients)
        self._username = username
        self._password = password
        self._starttls = starttls
        self._ssl = ssl
        self._timeout = timeout
        self._context = tls_context

    def __repr__(self) -> str:
        return f"SmtpNotifier({self._host!r}, {self._port}, recipients={self._recipients!r})"

    def send(self, alert: Alert) -> Delivery:
        """Send the alert once; report the server's refusal or the connection error."""
        message = build(alert, self._sender, self._recipients)
        try:
            refused = self._submit(message)
        except smtplib.SMTPResponseException as exc:
            return self._failed(exc.smtp_code, f"{type(exc).__name__}: {_text(exc.smtp_error)}")
        except smtplib.SMTPRecipientsRefused as exc:
            return self._failed(None, f"all recipients refused: {_refusals(exc.recipients)}")
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused connections, timeouts and TLS failures (ssl.SSLError).
            return self._failed(None, f"{type(exc).__name__}: {exc}")
        detail = f"refused: {_refusals(refused)}" if refused else ""
        return Delivery(channel=self.name, ok=True, status=250, detail=detail)

    def _submit(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        context = self._context or create_default_context()
        client = (
            smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
            if self._ssl
            else smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        )
        with client:
            if self._starttls:
                client.starttls(context=context)
            if self._username is not None:
                client.login(self._username, self._password or "")
            return client.send_message(message, self._sender, self._recipients)

    def _failed(self, status: int | None, detail: str) -> Delivery:
        log.warning("email delivery to %s:%d failed: %s", self._host, self._port, detail)
        return Delivery(channel=self.name, ok=False, status=status, detail=detail[:300])


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr} {code} {_text(reason)}" for addr, (code, reason) in refused.items())
