"""[platform] rules the sync service relies on: TLS checks never off towards a real host, concurrency bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthhut.config import PlatformConfig, is_loopback_url, parse_config
from healthhut.errors import ConfigError
from healthhut.sync.fhir_client import build_ssl_context
from healthhut.sync.service import settings_from_config


@pytest.mark.parametrize("url", ["https://127.0.0.1:8443/fhir", "https://127.8.0.1/fhir", "https://[::1]:9/fhir",
                                 "https://localhost/fhir", "http://api.localhost:80/fhir"])
def test_loopback_urls(url: str) -> None:
    assert is_loopback_url(url)
    assert PlatformConfig(base_url=url, verify_tls=False).verify_tls is False


@pytest.mark.parametrize("url", ["https://fhir.district.example/fhir", "https://10.0.0.5/fhir",
                                 "https://127.0.0.1.nip.io/fhir", "https://localhost.example/fhir",
                                 "https://[::ffff:8.8.8.8]/fhir"])
def test_verify_tls_false_is_refused_for_a_real_host(url: str) -> None:
    assert not is_loopback_url(url)
    with pytest.raises(ConfigError) as caught:
        parse_config({"platform": {"base_url": url, "verify_tls": False}}, "hut.toml")
    assert caught.value.key == "platform"
    assert "loopback" in str(caught.value)


def test_verify_tls_false_is_refused_when_the_token_endpoint_is_real(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token_url"):
        parse_config({"platform": {"base_url": "https://127.0.0.1/fhir", "verify_tls": False, "auth": "oauth2",
                                   "token_url": "https://auth.district.example/token", "client_id": "hut",
                                   "client_secret_file": str(tmp_path / "s")}}, "hut.toml")


def test_plain_http_only_to_loopback() -> None:
    assert PlatformConfig(base_url="http://127.0.0.1:8080/fhir").base_url == "http://127.0.0.1:8080/fhir"
    with pytest.raises(ConfigError, match="https"):
        parse_config({"platform": {"base_url": "http://fhir.district.example/fhir"}}, "hut.toml")


def test_unverified_context_still_presents_the_client_certificate(tmp_path: Path) -> None:
    # verify_tls=false must not silently drop mutual TLS: the client certificate is still loaded (and a
    # missing one is still an error)
    config = PlatformConfig(base_url="https://127.0.0.1/fhir", verify_tls=False, client_cert=tmp_path / "c.pem",
                            client_key=tmp_path / "c.key")
    with pytest.raises(ConfigError, match="TLS material"):
        build_ssl_context(config)
    assert build_ssl_context(PlatformConfig(base_url="https://127.0.0.1/fhir", verify_tls=False)).verify_mode == 0


def test_concurrency_and_compression_from_config() -> None:
    platform = PlatformConfig(base_url="https://127.0.0.1/fhir", concurrency=5, compress_requests=True)
    assert settings_from_config(platform).concurrency == 5
    assert PlatformConfig().concurrency == 2 and PlatformConfig().compress_requests is False
    for bad in (0, 17):
        with pytest.raises(ConfigError, match=r"platform\.concurrency"):
            parse_config({"platform": {"concurrency": bad}}, "hut.toml")
