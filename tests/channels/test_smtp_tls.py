"""The SMTP connection pool against aiosmtpd with TLS: STARTTLS when the server offers it (and a
login over it), TLS from the first byte for smtps://, and a refused login as a failure that says so.
The server's certificate is made here and trusted through the pool's TLS context."""

import datetime as dt
import email
import email.policy
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from churnsaver.backend.channels.email import OutgoingEmail, RawEmail, SmtpPool, SmtpServer, build
from churnsaver.backend.channels.outcomes import PermanentFailure
from churnsaver.backend.core.db import utcnow
from tests.fixtures.smtp import Mailbox, free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert and key files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def trusting(certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def authenticate(server, session, envelope, mechanism, credentials) -> AuthResult:
    ok = isinstance(credentials, LoginPassword) and (credentials.login, credentials.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok, handled=False)


def mail(to: str) -> RawEmail:
    return build(
        OutgoingEmail(
            message_id=f"<{uuid.uuid4()}@example.com>",
            from_name="Shop",
            from_address="shop@example.com",
            to_address=to,
            subject="hello",
            body_text="hi",
            body_html=None,
            unsubscribe_url="https://example.com/l/x",
            date=utcnow(),
        )
    )


@pytest.fixture
def starttls_server(certificate) -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    yield port, mailbox
    controller.stop()


async def test_smtp_upgrades_with_starttls_and_logs_in(certificate, starttls_server) -> None:
    port, mailbox = starttls_server
    pool = SmtpPool(SmtpServer.from_url(f"smtp://mailer:s3cret@127.0.0.1:{port}"), trusting(certificate))
    await pool.send(mail("a@example.com"))
    await pool.send(mail("b@example.com"))  # over the same, reused connection
    await pool.close()
    assert [m["To"] for m in mailbox.messages] == ["a@example.com", "b@example.com"]


async def test_a_refused_login_is_a_failure_that_says_so(certificate, starttls_server) -> None:
    port, mailbox = starttls_server
    pool = SmtpPool(SmtpServer.from_url(f"smtp://mailer:wrong@127.0.0.1:{port}"), trusting(certificate))
    with pytest.raises(PermanentFailure, match="SMTP login refused: 535") as refused:
        await pool.send(mail("a@example.com"))
    assert refused.value.suppress is False  # our credentials are wrong, not the recipient's address
    assert mailbox.messages == []


async def test_smtps_is_tls_from_the_first_byte(certificate) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=server_context(certificate))
    controller.start()
    try:
        pool = SmtpPool(SmtpServer.from_url(f"smtps://127.0.0.1:{port}"), trusting(certificate))
        await pool.send(mail("c@example.com"))
        await pool.close()
    finally:
        controller.stop()
    assert [m["To"] for m in mailbox.messages] == ["c@example.com"]


def test_an_smtp_url_is_read_with_its_defaults() -> None:
    assert SmtpServer.from_url("smtps://u%40x:p%3Aw@mail.example.com") == SmtpServer(
        hostname="mail.example.com", port=465, implicit_tls=True, username="u@x", password="p:w"
    )
    assert SmtpServer.from_url("smtp://localhost").port == 25
    with pytest.raises(ValueError, match="CHURNSAVER_SMTP_URL"):
        SmtpServer.from_url("http://localhost")


def test_a_built_email_parses_back_to_what_was_given_and_a_newline_adds_no_header() -> None:
    html = "<p>Olá Ana</p><a href='https://example.com/l/" + "a" * 300 + "'>pay</a>"
    raw = build(
        OutgoingEmail(
            message_id="<m1@example.com>",
            from_name="Loja Ünï, Inc",
            from_address="shop@example.com",
            to_address="ana@example.com",
            subject="Pagamento — falhou\nBcc: someone@example.com",
            body_text="Olá Ana,\n.a line with a dot =\nhttps://example.com/l/" + "a" * 300,
            body_html=html,
            unsubscribe_url="https://example.com/l/" + "b" * 300,
            date=utcnow(),
        )
    )
    mail = email.message_from_bytes(raw.content, policy=email.policy.default)
    assert (raw.sender, raw.recipient) == ("shop@example.com", "ana@example.com")
    assert mail["From"] == '"Loja Ünï, Inc" <shop@example.com>'
    assert mail["Subject"] == "Pagamento — falhou Bcc: someone@example.com" and mail["Bcc"] is None
    assert mail["List-Unsubscribe"] == "<https://example.com/l/" + "b" * 300 + ">"
    assert mail.get_body(("plain",)).get_content().splitlines()[1:] == [
        ".a line with a dot =",
        "https://example.com/l/" + "a" * 300,
    ]
    assert mail.get_body(("html",)).get_content() == html
    assert not mail.defects
