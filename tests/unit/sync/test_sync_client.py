"""FhirClient's seam: status/exception mapping, Retry-After, auth (bearer, OAuth2, SMART JWT), TLS defaults.

httpx.MockTransport stands in for the network here (one unit: the client); the same client is exercised
against the real Medplum server in tests/integration/test_sync_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from healthhut.config import PlatformConfig
from healthhut.errors import PermanentSyncError, TransientSyncError
from healthhut.sync.fhir_client import FhirClient, build_ssl_context

BASE = "https://fhir.district.example/R4"
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "structure",
                                                          "details": {"text": "Invalid additional property"},
                                                          "expression": ["Observation.foo"]}]}


async def no_sleep(_: float) -> None:
    return None


def client_for(handler, **platform: object) -> FhirClient:  # type: ignore[no-untyped-def]
    config = PlatformConfig(base_url=BASE, **platform)  # type: ignore[arg-type]
    return FhirClient(config, transport=httpx.MockTransport(handler), sleep=no_sleep, clock=lambda: 1000.0)


@pytest.mark.parametrize(("status", "kind"), [(408, TransientSyncError), (429, TransientSyncError),
                                              (500, TransientSyncError), (502, TransientSyncError),
                                              (503, TransientSyncError), (400, PermanentSyncError),
                                              (409, PermanentSyncError), (422, PermanentSyncError),
                                              (413, PermanentSyncError)])
async def test_status_mapping(status: int, kind: type) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=OUTCOME, headers={"Retry-After": "42"})

    async with client_for(handler) as client:
        with pytest.raises(kind) as caught:
            await client.post_bundle(b"{}")
    if kind is TransientSyncError:
        assert caught.value.retry_after == 42.0
    else:
        assert caught.value.status == status
        assert caught.value.outcome == OUTCOME          # the server's OperationOutcome travels with it
        assert "Observation.foo" in caught.value.message


async def test_success_returns_the_response_bundle_and_sends_fhir_json_gzip_keepalive() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

    async with client_for(handler) as client:
        reply = await client.post_bundle(b'{"resourceType":"Bundle"}')
    assert reply.status == 200 and reply.bundle["type"] == "transaction-response"
    request = seen[0]
    assert str(request.url) == BASE + "/"
    assert request.headers["content-type"] == "application/fhir+json"
    assert "gzip" in request.headers["accept-encoding"]
    assert "authorization" not in request.headers


async def test_dropped_connection_is_resent_once_within_the_attempt_then_transient() -> None:
    calls = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    async with client_for(handler) as client:
        with pytest.raises(TransientSyncError):
            await client.post_bundle(b"{}")
    assert len(calls) == 2


async def test_timeout_is_transient_and_not_resent_at_once() -> None:
    calls = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow")

    async with client_for(handler) as client:
        with pytest.raises(TransientSyncError, match="timed out"):
            await client.post_bundle(b"{}")
    assert len(calls) == 1


async def test_bearer_token_from_file_reread_after_401(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer first":
            await asyncio.to_thread(token.write_text, "second")  # rotated while we held the old one
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "Bundle"})

    async with client_for(handler, auth="bearer", token_file=token) as client:
        await client.post_bundle(b"{}")
    assert seen == ["Bearer first", "Bearer second"]


async def test_forbidden_is_transient_so_records_are_not_dead_lettered(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json=OUTCOME)

    async with client_for(handler, auth="bearer", token_file=token) as client:
        with pytest.raises(TransientSyncError, match="credentials"):
            await client.post_bundle(b"{}")


async def test_oauth2_client_credentials_token_is_cached(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    grants: list[dict[str, list[str]]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            grants.append(parse_qs(request.content.decode()))
            return httpx.Response(200, json={"access_token": "AT", "expires_in": 3600, "token_type": "bearer"})
        assert request.headers["authorization"] == "Bearer AT"
        return httpx.Response(200, json={"resourceType": "Bundle"})

    async with client_for(handler, auth="oauth2", token_url="https://auth.example/token", client_id="hut-7",
                          client_secret_file=secret) as client:
        await client.post_bundle(b"{}")
        await client.post_bundle(b"{}")
    assert len(grants) == 1
    assert grants[0]["grant_type"] == ["client_credentials"]
    assert grants[0]["client_id"] == ["hut-7"] and grants[0]["client_secret"] == ["s3cret"]


@pytest.mark.parametrize("key_kind", ["rsa", "ec"])
async def test_smart_backend_services_signed_assertion(tmp_path: Path, key_kind: str) -> None:
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_kind == "rsa"
           else ec.generate_private_key(ec.SECP384R1()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    assertions: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            form = parse_qs(request.content.decode())
            assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
            assertions.append(form["client_assertion"][0])
            return httpx.Response(200, json={"access_token": "AT", "expires_in": 300})
        return httpx.Response(200, json={"resourceType": "Bundle"})

    async with client_for(handler, auth="smart", token_url="https://auth.example/token", client_id="hut-7",
                          private_key_file=key_file) as client:
        await client.post_bundle(b"{}")
    header = jwt.get_unverified_header(assertions[0])
    assert header["alg"] == ("RS384" if key_kind == "rsa" else "ES384")
    claims = jwt.decode(assertions[0], key.public_key(), algorithms=[header["alg"]],
                        audience="https://auth.example/token", options={"verify_exp": False})
    assert claims["iss"] == claims["sub"] == "hut-7"
    assert claims["exp"] - claims["iat"] <= 300 and claims["jti"]


async def test_token_endpoint_refusal_is_transient_not_permanent(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("wrong")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    async with client_for(handler, auth="oauth2", token_url="https://auth.example/token", client_id="c",
                          client_secret_file=secret) as client:
        with pytest.raises(TransientSyncError, match="credentials"):
            await client.post_bundle(b"{}")


def test_tls_is_verified_by_default_and_takes_a_ca_bundle(tmp_path: Path) -> None:
    context = build_ssl_context(PlatformConfig(base_url=BASE))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    missing = PlatformConfig(base_url=BASE, ca_file=tmp_path / "nope.pem")
    from healthhut.errors import ConfigError

    with pytest.raises(ConfigError):
        build_ssl_context(missing)


def test_outcome_json_round_trips() -> None:
    assert json.loads(json.dumps(OUTCOME)) == OUTCOME
