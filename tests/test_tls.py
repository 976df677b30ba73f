"""TLS: the real OTel exporters reach the collector over TLS (gRPC and HTTP) with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from collector.server import Collector
from store.config import ConfigError
from store.keys import create_key, keys_path
from tests.conftest import query, wait_for
from tests.test_auth import secure_config, send_span


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA needs key identifiers and key usage.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_collector(tmp_path: Path):
    cert_file, key_file = make_certificate(tmp_path)
    config = secure_config(tmp_path / "data", tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    _, key = create_key(keys_path(config), "tls-project")
    with Collector(config) as running:
        yield running, config, key, cert_file


def test_grpc_exporter_over_tls_with_env_certificate_and_headers(tls_collector, monkeypatch) -> None:
    collector, config, key, cert_file = tls_collector
    # Configured the way users do it: the SDK's own environment variables.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert_file))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{key}")
    exporter = OTLPSpanExporter(endpoint=f"https://127.0.0.1:{collector.grpc_port}")
    assert send_span(exporter, "over-grpc-tls") == SpanExportResult.SUCCESS
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT name, project FROM spans"), lambda r: len(r) == 1)
    assert rows == [{"name": "over-grpc-tls", "project": "tls-project"}]


def test_http_exporter_over_tls_with_certificate_file(tls_collector, monkeypatch) -> None:
    collector, config, key, cert_file = tls_collector
    # requests lets these win over the exporter's certificate_file (psf/requests#3829): users must unset them too.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    url = f"https://127.0.0.1:{collector.http_port}/v1/traces"
    exporter = HttpSpanExporter(
        endpoint=url, certificate_file=str(cert_file), headers={"authorization": f"Bearer {key}"}
    )
    assert send_span(exporter, "over-http-tls") == SpanExportResult.SUCCESS
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT name, project FROM spans"), lambda r: len(r) == 1)
    assert rows == [{"name": "over-http-tls", "project": "tls-project"}]
    # A client that does not trust the certificate cannot talk to it, nor can one speaking plain HTTP.
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(f"https://127.0.0.1:{collector.http_port}/healthz", timeout=5)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    with urllib.request.urlopen(f"https://127.0.0.1:{collector.http_port}/healthz", timeout=5, context=trusted) as ok:
        assert ok.read() == b"ok\n"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/healthz", timeout=5)


def test_grpc_without_tls_cannot_reach_a_tls_listener(tls_collector) -> None:
    collector, _, key, _ = tls_collector
    plain = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, headers={"x-api-key": key}, timeout=3
    )
    assert send_span(plain, "plaintext") == SpanExportResult.FAILURE


def test_unreadable_certificate_stops_start_up_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    config = secure_config(
        tmp_path / "data", tls_cert_file=str(tmp_path / "bad.pem"), tls_key_file=str(tmp_path / "bad.pem")
    )
    with pytest.raises(ConfigError, match="cannot use TLS certificate"):
        Collector(config).__enter__()
