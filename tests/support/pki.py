"""A throw-away test CA, server certificates and the token-signing certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TEST_HOSTNAME = "registry.minirun.test"
# Docker Hub's API host: the tests make it resolve to 127.0.0.1 inside a private mount
# namespace (its own /etc/hosts), where a test registry answers on port 443.
HUB_HOSTNAME = "registry-1.docker.io"


@dataclass
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    signing_cert: Path
    signing_key: Path
    client_cert: Path   # a client certificate the test CA signed (for a registry that asks for one)
    client_key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))


def make_pki(directory: Path) -> Pki:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=2)

    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minirun test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    srv_key = _key()
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_HOSTNAME)]))
           .issuer_name(ca_name).public_key(srv_key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
           .add_extension(x509.SubjectAlternativeName([
               x509.DNSName(TEST_HOSTNAME), x509.DNSName("localhost"), x509.DNSName(HUB_HOSTNAME),
               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
           .sign(ca_key, hashes.SHA256()))

    # The registry trusts tokens whose x5c chain ends in this self-signed certificate.
    sig_key = _key()
    sig_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minirun test token signer")])
    sig = (x509.CertificateBuilder().subject_name(sig_name).issuer_name(sig_name)
           .public_key(sig_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now).not_valid_after(later)
           .sign(sig_key, hashes.SHA256()))

    cli_key = _key()
    cli = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minirun test client")]))
           .issuer_name(ca_name).public_key(cli_key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
           .sign(ca_key, hashes.SHA256()))

    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key",
              directory / "signing.pem", directory / "signing.key", directory / "client.cert",
              directory / "client.key")
    pki.client_cert.write_bytes(cli.public_bytes(serialization.Encoding.PEM))
    _write_key(cli_key, pki.client_key)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    _write_key(srv_key, pki.server_key)
    pki.signing_cert.write_bytes(sig.public_bytes(serialization.Encoding.PEM))
    _write_key(sig_key, pki.signing_key)
    return pki
