"""Email over SMTP with aiosmtplib: the message built (HTML + text, List-Unsubscribe one-click), and
a small pool of open connections per server, reused from send to send.

`smtp://host:port` upgrades with STARTTLS when the server offers it; `smtps://` is TLS from the
first byte; `user:pass@` logs in. A 4xx reply (or a dropped connection before the server accepted
the message) is temporary; a 5xx reply to the recipient or the data is permanent.
"""

import asyncio
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

POOL_SIZE = 8
TIMEOUT_SECONDS = 30


class TemporaryFailure(Exception):
    """Not delivered; trying again later may work."""


class PermanentFailure(Exception):
    """Not delivered and never will be to this address: `suppress` says to stop sending to it."""

    def __init__(self, reason: str, *, suppress: bool) -> None:
        super().__init__(reason)
        self.suppress = suppress


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    message_id: str  # the Message-ID header, <...@...>
    from_name: str
    from_address: str
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    unsubscribe_url: str
    date: datetime


def build(email: OutgoingEmail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((email.from_name, email.from_address))
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = email.message_id
    # RFC 8058: a mail client may unsubscribe with one POST to this URL, no page in between.
    message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


@dataclass(frozen=True, slots=True)
class SmtpServer:
    hostname: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("CHURNSAVER_SMTP_URL must be smtp://[user:pass@]host:port or smtps://...")
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpPool:
    """Up to POOL_SIZE open connections to one server; each send borrows one, and a connection
    that failed is closed rather than returned."""

    def __init__(self, server: SmtpServer, tls_context: ssl.SSLContext | None = None) -> None:
        self.server = server
        self.tls_context = tls_context
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(POOL_SIZE)

    async def _connect(self) -> aiosmtplib.SMTP:
        server = self.server
        client = aiosmtplib.SMTP(
            hostname=server.hostname,
            port=server.port,
            use_tls=server.implicit_tls,
            start_tls=None if not server.implicit_tls else False,  # None: STARTTLS when offered
            tls_context=self.tls_context,
            timeout=TIMEOUT_SECONDS,
        )
        await client.connect()
        if server.username:
            await client.login(server.username, server.password or "")
        return client

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.send_message(message)
            except aiosmtplib.SMTPRecipientsRefused as error:
                await _close(client)
                reply = error.recipients[0] if error.recipients else None
                raise _classified(reply.code if reply else 550, reply.message if reply else str(error)) from None
            except aiosmtplib.SMTPResponseException as error:
                await _close(client)
                raise _classified(error.code, error.message) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
                await _close(client)
                raise TemporaryFailure(f"SMTP connection failed: {error}") from None
            self._idle.append(client)

    async def close(self) -> None:
        while self._idle:
            await _close(self._idle.pop())


def _classified(code: int, text: str) -> Exception:
    reason = f"SMTP {code}: {text}".strip()
    if 500 <= code < 600:
        return PermanentFailure(reason, suppress=True)
    return TemporaryFailure(reason)


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        try:
            await client.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()


_pools: dict[tuple[str, int], SmtpPool] = {}


def pool_for(url: str) -> SmtpPool:
    """The pool of this process and event loop for `url`."""
    loop_key = (url, id(asyncio.get_running_loop()))
    if loop_key not in _pools:
        _pools[loop_key] = SmtpPool(SmtpServer.from_url(url))
    return _pools[loop_key]
