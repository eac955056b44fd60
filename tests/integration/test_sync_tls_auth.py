"""Sync over real TLS, mutual TLS, OAuth2 client credentials and SMART Backend Services, on loopback.

The Medplum test server listens with https (certificates from a CA made for this test session), optionally
demands a client certificate, and optionally runs a token endpoint whose bearer tokens every FHIR request
then needs. Each success ends by asking the server what it stored (exactly once); each refusal ends with
nothing on the server and nothing marked sent or dead in the hut's outbox.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sync_support import PHD_SYSTEM, FakeClock, FhirTestServer, fhir_server_fixture, fill_store, platform_config
from sync_tls_support import Pki, make_pki

from healthhut.errors import TransientSyncError
from healthhut.records.store import RecordStore
from healthhut.sync.fhir_client import FhirClient, jwk_thumbprint
from healthhut.sync.worker import STATE_LAST_ERROR, DrainReport, SyncSettings, SyncWorker

CLIENT_ID = "hut-test-07"
EMPTY_BUNDLE = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": []}).encode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_args(pki: Pki) -> list[str]:
    return ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]


def _trusting(pki: Pki, *, client: bool = False) -> ssl.SSLContext:
    """What the tests' own FHIR searches use (the hut's client builds its own from the config)."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if client:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[FhirTestServer]:
    yield from fhir_server_fixture(extra_args=_tls_args(pki), ssl_context=_trusting(pki))


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[FhirTestServer]:
    yield from fhir_server_fixture(extra_args=[*_tls_args(pki), "--tls-client-ca", str(pki.ca_cert)],
                                   ssl_context=_trusting(pki, client=True))


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "client-secret"
    path.write_text("s3cret-for-loopback-only\n")
    return path


@pytest.fixture(scope="module")
def auth_server(pki: Pki, secret_file: Path) -> Iterator[FhirTestServer]:
    args = [*_tls_args(pki), "--auth-client-id", CLIENT_ID, "--auth-client-secret-file", str(secret_file),
            "--auth-public-key", str(pki.smart_public)]
    yield from fhir_server_fixture(extra_args=args, ssl_context=_trusting(pki), auth=True)


async def drain(store: RecordStore, base_url: str, *, until_empty: bool = True, client: FhirClient | None = None,
                **platform: Any) -> DrainReport:
    clock = FakeClock()
    settings = SyncSettings(batch_size=50, concurrency=2, lease=timedelta(minutes=5))
    if client is None:
        async with FhirClient(platform_config(base_url, **platform), sleep=clock.sleep) as own:
            return await drain(store, base_url, until_empty=until_empty, client=own)
    worker = SyncWorker(store, client, settings, now=clock, sleep=clock.sleep, rand=lambda: 0.5)

    async def remaining() -> int:
        status = await asyncio.to_thread(store.outbox_counts)
        return sum(n for state, n in status.items() if state.value in ("pending", "sending"))

    return await worker.drain(until_empty=until_empty, remaining=remaining, max_wait=600)


def outbox_states(store: RecordStore) -> dict[str, int]:
    return {state.value: n for state, n in store.outbox_counts().items() if n}


def assert_exactly_once(server: FhirTestServer, identifiers: list[str]) -> None:
    assert server.stored_identifiers() == {i: 1 for i in identifiers}
    sample = identifiers[len(identifiers) // 2]  # and as any platform client would look: a FHIR search
    assert server.search_total("Observation", f"{PHD_SYSTEM}|{sample}") == 1


async def assert_refused(store: RecordStore, server: FhirTestServer, base_url: str, expected: str,
                         **platform: Any) -> None:
    """One pass against a server that must refuse us: nothing stored there, nothing sent or dead here."""
    filled = await asyncio.to_thread(fill_store, store, 3)
    report = await drain(store, base_url, until_empty=False, **platform)
    assert report.sent == 0 and report.dead == 0
    assert await asyncio.to_thread(outbox_states, store) == {"pending": len(filled.identifiers)}
    assert server.stored_identifiers() == {}
    error = json.loads(await asyncio.to_thread(store.get_state, STATE_LAST_ERROR) or "{}")
    assert expected in error.get("reason", "")


# ---- TLS ---------------------------------------------------------------------------------------------------
async def test_default_config_refuses_a_server_signed_by_an_unknown_ca(tls_server: FhirTestServer,
                                                                      store: RecordStore, pki: Pki) -> None:
    tls_server.reset()
    async with FhirClient(platform_config(tls_server.base_url)) as client:
        with pytest.raises(TransientSyncError) as caught:
            await client.post_bundle(EMPTY_BUNDLE)
    assert "TLS certificate is not trusted" in caught.value.message
    assert "platform.ca_file" in str(caught.value)
    assert tls_server.stats()["requests"] == 0  # refused during the handshake: no request reached it
    await assert_refused(store, tls_server, tls_server.base_url, "TLS certificate is not trusted")
    error = json.loads(await asyncio.to_thread(store.get_state, STATE_LAST_ERROR) or "{}")
    assert "(put the CA that signed it in platform.ca_file)" in error["reason"]  # `sync status` says what to fix
    # a CA file that holds some other CA is no better than the system store
    await assert_refused(store, tls_server, tls_server.base_url, "TLS certificate is not trusted",
                         ca_file=pki.other_ca_cert)


async def test_ca_file_makes_the_server_trusted(tls_server: FhirTestServer, store: RecordStore,
                                                pki: Pki) -> None:
    tls_server.reset()
    filled = await asyncio.to_thread(fill_store, store, 12)
    report = await drain(store, tls_server.base_url, ca_file=pki.ca_cert)
    assert report.dead == 0
    assert await asyncio.to_thread(outbox_states, store) == {"sent": len(filled.identifiers)}
    assert_exactly_once(tls_server, filled.identifiers)


async def test_verify_tls_false_is_honoured_for_a_loopback_server(tls_server: FhirTestServer,
                                                                  store: RecordStore) -> None:
    tls_server.reset()
    filled = await asyncio.to_thread(fill_store, store, 4)
    await drain(store, tls_server.base_url, verify_tls=False)
    assert_exactly_once(tls_server, filled.identifiers)


# ---- mutual TLS --------------------------------------------------------------------------------------------
async def test_mutual_tls_refuses_without_a_client_certificate(mtls_server: FhirTestServer,
                                                               store: RecordStore, pki: Pki) -> None:
    mtls_server.reset()
    # TLS 1.3: the server's "certificate required" alert comes after the client's handshake, and it may reset
    # the connection before the client reads the alert (broken pipe, reset): either way the message points at
    # the client certificate
    await assert_refused(store, mtls_server, mtls_server.base_url, "", ca_file=pki.ca_cert)
    error = json.loads(await asyncio.to_thread(store.get_state, STATE_LAST_ERROR) or "{}")
    assert ("TLS handshake with the platform failed (TLSV13_ALERT_CERTIFICATE_REQUIRED)" in error["reason"]
            or "closed by the server" in error["reason"]), error
    assert "platform.client_cert" in error["reason"]
    # a certificate from a CA the server does not accept is refused too (the server resets the connection)
    report = await drain(store, mtls_server.base_url, until_empty=False, ca_file=pki.ca_cert,
                         client_cert=pki.rogue_client_cert, client_key=pki.rogue_client_key)
    assert report.sent == 0
    assert mtls_server.stored_identifiers() == {}
    assert await asyncio.to_thread(outbox_states, store) == {"pending": 6}


async def test_mutual_tls_delivers_with_the_huts_certificate(mtls_server: FhirTestServer, store: RecordStore,
                                                             pki: Pki) -> None:
    mtls_server.reset()
    filled = await asyncio.to_thread(fill_store, store, 12)
    report = await drain(store, mtls_server.base_url, ca_file=pki.ca_cert, client_cert=pki.client_cert,
                         client_key=pki.client_key)
    assert report.dead == 0
    assert await asyncio.to_thread(outbox_states, store) == {"sent": len(filled.identifiers)}
    assert_exactly_once(mtls_server, filled.identifiers)


# ---- OAuth2 client credentials and SMART Backend Services ---------------------------------------------------
def _auth_stats(server: FhirTestServer) -> dict[str, Any]:
    stats: dict[str, Any] = server._admin("GET", "/auth/stats")
    return stats


def _oauth(server: FhirTestServer, pki: Pki, secret_file: Path) -> dict[str, Any]:
    return {"auth": "oauth2", "token_url": f"{server.origin}/auth/token", "client_id": CLIENT_ID,
            "client_secret_file": secret_file, "ca_file": pki.ca_cert}


def _smart(server: FhirTestServer, pki: Pki, key: Path | None = None) -> dict[str, Any]:
    return {"auth": "smart", "token_url": f"{server.origin}/auth/token", "client_id": CLIENT_ID,
            "private_key_file": key or pki.smart_key, "ca_file": pki.ca_cert}


async def test_fhir_routes_need_an_issued_token(auth_server: FhirTestServer, store: RecordStore,
                                                pki: Pki, tmp_path: Path) -> None:
    auth_server.reset()
    token_file = tmp_path / "stale-token"
    token_file.write_text("not-issued-by-the-server")
    await assert_refused(store, auth_server, auth_server.base_url, "refused our credentials (401)",
                         auth="bearer", token_file=token_file, ca_file=pki.ca_cert)
    assert _auth_stats(auth_server)["unauthorized"] >= 2  # the first 401 made the client re-read and resend


async def test_oauth2_client_credentials_fetch_cache_and_refetch_after_401(
        auth_server: FhirTestServer, store: RecordStore, pki: Pki, secret_file: Path) -> None:
    auth_server.reset()
    config = platform_config(auth_server.base_url, **_oauth(auth_server, pki, secret_file))
    async with FhirClient(config) as client:
        first = await asyncio.to_thread(fill_store, store, 10)
        await drain(store, auth_server.base_url, client=client)
        assert_exactly_once(auth_server, first.identifiers)
        assert _auth_stats(auth_server)["issued"] == 1  # one token for every bundle, two senders at once
        # the platform invalidates its tokens (restart, revocation): the next POSTs get 401, the client
        # fetches one new token and resends, and nothing is lost or duplicated
        auth_server._admin("POST", "/auth/revoke", {})
        second = await asyncio.to_thread(fill_store, store, 10, start=10)
        report = await drain(store, auth_server.base_url, client=client)
    assert report.sent == len(second.identifiers) and report.retried == 0
    assert_exactly_once(auth_server, first.identifiers + second.identifiers)
    stats = _auth_stats(auth_server)
    assert stats["issued"] == 2 and stats["refused"] == 0 and stats["unauthorized"] >= 1


async def test_oauth2_wrong_secret_keeps_records_pending(auth_server: FhirTestServer, store: RecordStore,
                                                         pki: Pki, tmp_path: Path) -> None:
    auth_server.reset()
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("guess")
    await assert_refused(store, auth_server, auth_server.base_url, "token endpoint refused the credentials",
                         **{**_oauth(auth_server, pki, wrong)})
    assert _auth_stats(auth_server)["refused"] >= 1


async def test_smart_backend_services_assertion_follows_the_spec(
        auth_server: FhirTestServer, store: RecordStore, pki: Pki) -> None:
    auth_server.reset()
    async with FhirClient(platform_config(auth_server.base_url, **_smart(auth_server, pki))) as client:
        first = await asyncio.to_thread(fill_store, store, 10)
        await drain(store, auth_server.base_url, client=client)
        auth_server._admin("POST", "/auth/expire", {})  # 401 -> a new assertion, a new token
        second = await asyncio.to_thread(fill_store, store, 6, start=10)
        await drain(store, auth_server.base_url, client=client)
    assert_exactly_once(auth_server, first.identifiers + second.identifiers)

    stats = _auth_stats(auth_server)
    assert stats["issued"] == 2 and stats["refused"] == 0
    key = load_pem_private_key(pki.smart_key.read_bytes(), password=None)
    token_url = f"{auth_server.origin}/auth/token"
    for seen in stats["assertions"]:  # what the server verified (signature checked there with the public key)
        header, claims = seen["header"], seen["claims"]
        assert header["alg"] == "RS384" and header["typ"] == "JWT"
        assert header["kid"] == jwk_thumbprint(key.public_key())
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == token_url
        assert 0 < claims["exp"] - claims["iat"] <= 300
    assert len({seen["claims"]["jti"] for seen in stats["assertions"]}) == 2  # a fresh jti each time


async def test_smart_with_an_unregistered_key_keeps_records_pending(
        auth_server: FhirTestServer, store: RecordStore, pki: Pki) -> None:
    auth_server.reset()
    await assert_refused(store, auth_server, auth_server.base_url, "token endpoint refused the credentials",
                         **_smart(auth_server, pki, pki.other_smart_key))
    assert _auth_stats(auth_server)["issued"] == 0



# ---- the service reads concurrency and compression from [platform] -------------------------------------------
async def test_push_uses_the_configured_concurrency_and_gzip(mtls_server: FhirTestServer, tmp_path: Path,
                                                             pki: Pki) -> None:
    from healthhut.config import parse_config
    from healthhut.sync.service import push

    mtls_server.reset()
    db = tmp_path / "hut.db"

    def fill() -> Any:
        with RecordStore.open(db) as filling:
            return fill_store(filling, 12)

    filled = await asyncio.to_thread(fill)
    config = parse_config({"store": {"path": str(db)}, "platform": {
        "base_url": mtls_server.base_url, "ca_file": str(pki.ca_cert), "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key), "concurrency": 3, "compress_requests": True}}, "hut.toml")
    result = await push(config, until_empty=True, max_wait=30)
    assert result.report.sent == len(filled.identifiers) and result.status.deliverable == 0
    stats = mtls_server.stats()
    assert stats["gzipped"] == stats["processed"] > 0  # every bundle went gzip-compressed
    assert_exactly_once(mtls_server, filled.identifiers)
