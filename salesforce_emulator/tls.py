"""The emulator's TLS material: a private CA and a server certificate for loopback, kept in the data folder.

simple-salesforce always speaks https, so the emulator serves TLS; clients trust the CA file
(``requests.Session().verify = ca.pem`` or ``REQUESTS_CA_BUNDLE``). Existing files are reused, so a
client that trusted the CA once keeps trusting a restarted emulator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ["localhost"]
LOOPBACK_IPS = ["127.0.0.1", "::1"]


@dataclass
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Passwork Salesforce Emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in LOOPBACK_NAMES]
    ips = list(LOOPBACK_IPS)
    try:
        ipaddress.ip_address(host)
        if host not in ips and host not in {"0.0.0.0", "::"}:
            ips.append(host)
    except ValueError:
        if host not in LOOPBACK_NAMES:
            names.append(x509.DNSName(host))
    names.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)
    return names


def _server_cert_usable(path: Path, ca: x509.Certificate, host: str) -> bool:
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    if cert.issuer != ca.subject:
        return False
    if cert.not_valid_after_utc - dt.timedelta(days=7) < dt.datetime.now(dt.timezone.utc):
        return False
    wanted = set(map(str, _alt_names(host)))
    present = set(map(str, cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value))
    return wanted <= present


def ensure_tls(directory: Path, host: str) -> TlsFiles:
    """The CA and server certificate in ``directory`` (created or renewed when needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca_key_path = directory / "ca-key.pem"
    now = dt.datetime.now(dt.timezone.utc)
    if files.ca_cert.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Passwork Emulator Local CA"))
            .issuer_name(_name("Passwork Emulator Local CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        ca_key_path.write_bytes(_pem_key(ca_key))
        ca_key_path.chmod(0o600)
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        files.server_cert.unlink(missing_ok=True)
    if not _server_cert_usable(files.server_cert, ca_cert, host):
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files.server_key.write_bytes(_pem_key(key))
        files.server_key.chmod(0o600)
        files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
