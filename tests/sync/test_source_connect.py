"""Source connections: TLS against a real PostgreSQL with ssl on, and clear errors without secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from passwork_assets.demo.embedded_postgres import EmbeddedPostgres, free_port
from passwork_assets.mapping.models import ConnectionConfig
from passwork_assets.source.connect import SourceConnectionError, open_connection

pytestmark = pytest.mark.integration


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Passwork test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = folder / "ca.crt", folder / "server.crt", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)  # PostgreSQL refuses a key readable by others
    return ca_path, cert_path, key_path


class TlsFrontEnd:
    """PostgreSQL's TLS negotiation in front of the embedded server, which is built without OpenSSL.

    It answers the client's SSLRequest with 'S', completes a real TLS handshake with the given certificate
    (so libpq's sslmode, CA and host-name checks run for real), then relays the decrypted protocol to the
    server. A client that does not ask for TLS is refused, like a server with only `hostssl` entries.
    """

    _SSL_REQUEST = struct.pack("!ii", 8, 80877103)
    _GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "TlsFrontEnd":
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self.loop)
        self.server = future.result(timeout=10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(8)
            if first == self._GSSENC_REQUEST:
                writer.write(b"N")
                await writer.drain()
                first = await reader.readexactly(8)
            if first != self._SSL_REQUEST:
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.context)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client hung up or refused our certificate; its own error is what the test checks
        finally:
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture(scope="module")
def tls_postgres(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The URL of a TLS-only endpoint in front of the session's PostgreSQL, and the CA that signed it."""
    ca, cert, key = _write_certificates(tmp_path_factory.mktemp("tls"))
    front = TlsFrontEnd(postgres.port, cert, key).start()
    try:
        yield f"postgresql://{postgres.superuser}@127.0.0.1:{front.port}/postgres", ca
    finally:
        front.stop()


def _config(monkeypatch: pytest.MonkeyPatch, url: str, **kwargs: object) -> ConnectionConfig:
    monkeypatch.setenv("TEST_SOURCE_URL", url)
    # The name is the key under `connections:`; the loader sets it the same way.
    return ConnectionConfig(url_env="TEST_SOURCE_URL", **kwargs).model_copy(update={"name": "product"})


def _ssl_in_use(conn) -> bool:
    assert conn.execute("select 1").fetchone() == (1,)
    return conn.pgconn.ssl_in_use


def test_sslmode_require_uses_tls(tls_postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls_postgres
    with open_connection(_config(monkeypatch, url, sslmode="require")) as conn:
        assert _ssl_in_use(conn) is True


def test_sslmode_verify_full_checks_the_certificate_against_the_ca(tls_postgres,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca = tls_postgres
    monkeypatch.setenv("TEST_SOURCE_CA", str(ca))
    cfg = _config(monkeypatch, url, sslmode="verify-full", sslrootcert_env="TEST_SOURCE_CA")
    with open_connection(cfg) as conn:
        assert _ssl_in_use(conn) is True


def test_verify_full_fails_clearly_with_the_wrong_ca(tls_postgres, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls_postgres
    other_ca, _, _ = _write_certificates(tmp_path)
    monkeypatch.setenv("TEST_SOURCE_CA", str(other_ca))
    cfg = _config(monkeypatch, url, sslmode="verify-full", sslrootcert_env="TEST_SOURCE_CA")
    with pytest.raises(SourceConnectionError, match="SSL error"):
        with open_connection(cfg):
            pass


def test_sslmode_require_against_a_server_without_tls_fails_clearly(postgres: EmbeddedPostgres,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(monkeypatch, postgres.url(), sslmode="require")
    with pytest.raises(SourceConnectionError) as info:
        with open_connection(cfg):
            pass
    message = str(info.value)
    assert f"cannot connect to source product: database postgres at 127.0.0.1:{postgres.port}" in message
    assert "server does not support SSL" in message


def test_unreachable_database_names_host_port_database_but_not_the_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    cfg = _config(monkeypatch, f"postgresql://sync:s3cr3t-pw@127.0.0.1:{port}/product_db")
    with pytest.raises(SourceConnectionError) as info:
        with open_connection(cfg):
            pass
    message = str(info.value)
    assert f"database product_db at 127.0.0.1:{port}" in message
    assert "Connection refused" in message
    assert "s3cr3t-pw" not in message and "TEST_SOURCE_URL" not in repr(info.value.__cause__ or "")


def test_missing_url_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SOURCE_URL_UNSET", raising=False)
    cfg = ConnectionConfig(url_env="TEST_SOURCE_URL_UNSET").model_copy(update={"name": "erp"})
    with pytest.raises(Exception, match="TEST_SOURCE_URL_UNSET is not set"):
        with open_connection(cfg):
            pass
