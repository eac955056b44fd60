"""Throwaway TLS and signing material for the sync TLS/auth tests: a CA, certificates for 127.0.0.1, keys.

Everything is generated per test session with `cryptography` (nothing checked in, nothing trusted outside).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Pki:
    ca_cert: Path           # the CA that signed the server and client certificates
    other_ca_cert: Path     # an unrelated CA: trusting it must not make the server trusted
    server_cert: Path       # SAN 127.0.0.1 and localhost
    server_key: Path
    client_cert: Path       # the hut's certificate for mutual TLS
    client_key: Path
    rogue_client_cert: Path  # a client certificate signed by the unrelated CA
    rogue_client_key: Path
    smart_key: Path         # RSA private key signing SMART Backend Services assertions (RS384)
    smart_public: Path      # its public key, registered with the token endpoint
    other_smart_key: Path   # a key the token endpoint does not know


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def _ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(common: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], *, server: bool
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca, other = _ca("healthhut test CA"), _ca("unrelated test CA")
    server, client, rogue = _leaf("127.0.0.1", ca, server=True), _leaf("hut-test", ca, server=False), \
        _leaf("hut-rogue", other, server=False)

    def cert(name: str, value: x509.Certificate) -> Path:
        path = folder / name
        path.write_bytes(value.public_bytes(_PEM))
        return path

    smart = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_smart = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    smart_public = folder / "smart-public.pem"
    smart_public.write_bytes(smart.public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return Pki(ca_cert=cert("ca.pem", ca[0]), other_ca_cert=cert("other-ca.pem", other[0]),
               server_cert=cert("server.pem", server[0]), server_key=_write_key(folder / "server.key", server[1]),
               client_cert=cert("client.pem", client[0]), client_key=_write_key(folder / "client.key", client[1]),
               rogue_client_cert=cert("rogue.pem", rogue[0]),
               rogue_client_key=_write_key(folder / "rogue.key", rogue[1]),
               smart_key=_write_key(folder / "smart.key", smart), smart_public=smart_public,
               other_smart_key=_write_key(folder / "other-smart.key", other_smart))
