"""Email over SMTP with aiosmtplib: the message built (HTML + text, List-Unsubscribe one-click), and
a small pool of open connections per server, reused from send to send.

`smtp://host:port` upgrades with STARTTLS when the server offers it; `smtps://` is TLS from the
first byte; `user:pass@` logs in. A 4xx reply (or a dropped connection before the server accepted
the message) is temporary; a 5xx reply to the recipient or the data is permanent.
"""

import asyncio
import binascii
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from churnsaver.backend.channels.outcomes import PermanentFailure, TemporaryFailure

POOL_SIZE = 8
TIMEOUT_SECONDS = 30


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


@dataclass(frozen=True, slots=True)
class RawEmail:
    """A message as it goes over the wire, with its envelope."""

    sender: str
    recipient: str
    content: bytes


def build(email: OutgoingEmail) -> RawEmail:
    """The MIME message: UTF-8 bodies in quoted-printable, header text made one line (a newline in
    a rendered subject cannot add a header) and RFC 2047-encoded when not ASCII. Written directly:
    the email package's header machinery costs more per message than the rest of sending."""
    headers = [
        ("From", formataddr((_one_line(email.from_name), email.from_address), charset="utf-8")),
        ("To", email.to_address),
        ("Subject", _header_text(email.subject)),
        ("Date", format_datetime(email.date)),
        ("Message-ID", email.message_id),
        # RFC 8058: a mail client may unsubscribe with one POST to this URL, no page in between.
        ("List-Unsubscribe", f"<{email.unsubscribe_url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("MIME-Version", "1.0"),
    ]
    if not email.body_html:
        body = _quoted_printable(email.body_text)
        headers += _part_headers("plain")
    else:
        # "=_" never occurs in quoted-printable text (it encodes "=" as "=3D"): a safe boundary.
        boundary = f"=_{uuid.uuid4().hex}"
        headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        body = b"".join(
            [
                *(
                    _header_block(_part_headers(subtype), start=f"--{boundary}\r\n") + _quoted_printable(text) + b"\r\n"
                    for subtype, text in (("plain", email.body_text), ("html", email.body_html))
                ),
                f"--{boundary}--\r\n".encode(),
            ]
        )
    return RawEmail(sender=email.from_address, recipient=email.to_address, content=_header_block(headers) + body)


def _header_block(headers: list[tuple[str, str]], start: str = "") -> bytes:
    return (start + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode()


def _part_headers(subtype: str) -> list[tuple[str, str]]:
    return [("Content-Type", f'text/{subtype}; charset="utf-8"'), ("Content-Transfer-Encoding", "quoted-printable")]


def _quoted_printable(text: str) -> bytes:
    """`text` as UTF-8 in quoted-printable, with CRLF line ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    return binascii.b2a_qp(lines, istext=True).replace(b"\n", b"\r\n")


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def _header_text(text: str) -> str:
    text = _one_line(text)
    return text if text.isascii() else Header(text, "utf-8").encode(linesep="\r\n")


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
            try:
                await client.login(server.username, server.password or "")
            except aiosmtplib.SMTPAuthenticationError as error:
                await _close(client)
                # Our credentials, not the recipient: fail the message, suppress no address.
                raise PermanentFailure(f"SMTP login refused: {error.code} {error.message}", suppress=False) from None
        return client

    async def send(self, message: RawEmail) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.sendmail(message.sender, [message.recipient], message.content)
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
