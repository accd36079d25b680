"""A throw-away certificate authority and a local broker with TLS and SCRAM listeners."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.broker import BrokerInfo, LocalBroker, SecureListeners, fetch_jars
from streams.settings import Settings

USER = "streamsense-test"


@dataclass(frozen=True)
class Certificates:
    """PEM files for the clients, PKCS12 stores for the broker, all made by :func:`make_pki`."""

    ca: Path
    client_cert: Path
    client_key: Path
    """Encrypted with ``key_password``."""
    key_password: str
    other_ca: Path
    """A CA that signed nothing the broker presents."""
    keystore: Path
    truststore: Path
    store_password: str


def _run(*args: str, cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} {args[1]} failed: {result.stderr[-1500:]}")


def _ca(directory: Path, name: str) -> None:
    _run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN=streamsense test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def _signed(directory: Path, name: str, extensions: str, key_password: str | None) -> None:
    """``name.pem`` signed by ``ca``, its key in ``name.key`` (encrypted with a password)."""
    encrypt = ["-aes-256-cbc", "-pass", f"pass:{key_password}"] if key_password else []
    _run(
        "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", f"{name}.key", *encrypt,
        cwd=directory,
    )  # fmt: skip
    passin = ["-passin", f"pass:{key_password}"] if key_password else []
    _run(
        "openssl", "req", "-new", "-key", f"{name}.key", *passin, "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions, encoding="ascii")
    _run(
        "openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


def make_pki(directory: Path) -> Certificates:
    """A CA, a broker certificate for 127.0.0.1 and localhost, and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    store_password, key_password = secrets.token_hex(12), secrets.token_hex(12)
    _ca(directory, "ca")
    _ca(directory, "other-ca")
    _signed(
        directory,
        "broker",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        None,
    )
    _signed(directory, "client", "extendedKeyUsage=clientAuth\n", key_password)
    _run(
        "openssl", "pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
        "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
        "-passout", f"pass:{store_password}",
        cwd=directory,
    )  # fmt: skip
    keytool = shutil.which("keytool") or "keytool"
    _run(
        keytool, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
        "-keystore", "trust.p12", "-storetype", "PKCS12", "-storepass", store_password,
        cwd=directory,
    )  # fmt: skip
    return Certificates(
        ca=directory / "ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        key_password=key_password,
        other_ca=directory / "other-ca.pem",
        keystore=directory / "broker.p12",
        truststore=directory / "trust.p12",
        store_password=store_password,
    )


@dataclass(frozen=True)
class SecureBroker:
    """A running local broker with PLAINTEXT, SASL_SSL and SSL (client certificate) listeners."""

    info: BrokerInfo
    certs: Certificates
    password: str
    """``USER``'s password (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN)."""

    def sasl_settings(self, mechanism: str = "SCRAM-SHA-512", **overrides: object) -> Settings:
        """Settings of a client that connects over SASL_SSL as ``USER``."""
        values: dict[str, object] = {
            "kafka_bootstrap": self.info.sasl_ssl_bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_ssl_cafile": self.certs.ca,
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": USER,
            "kafka_sasl_password": self.password,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]

    def mtls_settings(self, **overrides: object) -> Settings:
        """Settings of a client that connects over SSL with its client certificate."""
        values: dict[str, object] = {
            "kafka_bootstrap": self.info.ssl_bootstrap,
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cafile": self.certs.ca,
            "kafka_ssl_certfile": self.certs.client_cert,
            "kafka_ssl_keyfile": self.certs.client_key,
            "kafka_ssl_key_password": self.certs.key_password,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]


def start_secure_broker(state: Path, settings: Settings) -> tuple[LocalBroker, SecureBroker]:
    """Make the certificates and start a broker with every listener under ``state``."""
    certs = make_pki(state / "pki")
    password = secrets.token_hex(16)
    broker = LocalBroker(
        state,
        fetch_jars(settings.kafka_version, settings.cache_dir),
        secure=SecureListeners(
            keystore=certs.keystore,
            truststore=certs.truststore,
            store_password=certs.store_password,
            users={USER: password},
        ),
    )
    return broker, SecureBroker(broker.start(), certs, password)
