"""The HTTP seam to the district FHIR server (the only module importing httpx): auth, TLS, errors mapped."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_fixed

from healthhut.config import PlatformConfig, read_secret
from healthhut.errors import ConfigError, PermanentSyncError, TransientSyncError
from healthhut.sync.backoff import parse_retry_after

FHIR_JSON = "application/fhir+json"
TRANSIENT_STATUSES = frozenset({408, 425, 429})
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Errors after which resending the same bundle is safe (every entry is a conditional create) and cheap.
_RESEND_AT_ONCE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
Sleep = Callable[[float], Awaitable[None]]


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a transport error, if any (httpx wraps it; some reads raise it bare)."""
    found = _cause(exc, ssl.SSLError)
    return found if isinstance(found, ssl.SSLError) else None


def transport_failure(exc: BaseException, who: str = "platform", *,
                      reset_advice: str | None = None) -> TransientSyncError:
    """A connection-level failure as a TransientSyncError whose message says what to fix for TLS problems.

    `reset_advice` is added when the server closed the connection on us: under TLS 1.3 a server that wants a
    client certificate it did not get often closes it before its "certificate required" alert is read.
    """
    tls = _tls_cause(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return TransientSyncError(f"the {who}'s TLS certificate is not trusted ({tls.verify_message})",
                                  advice="put the CA that signed it in platform.ca_file")
    if tls is not None:
        return TransientSyncError(f"TLS handshake with the {who} failed ({tls.reason or tls})",
                                  advice="check platform.client_cert/client_key (mutual TLS) and platform.ca_file")
    if isinstance(exc, httpx.TimeoutException):
        return TransientSyncError(f"{who} timed out ({type(exc).__name__})")
    if _cause(exc, ConnectionError) is not None:  # reset, broken pipe: the server hung up on us
        return TransientSyncError(f"{who} connection failed ({type(exc).__name__}: closed by the server)",
                                  advice=reset_advice)
    return TransientSyncError(f"{who} connection failed ({type(exc).__name__})")


def _resend_at_once(exc: BaseException) -> bool:
    # A TLS refusal will be the same a moment later: only plain dropped connections are worth a resend.
    return isinstance(exc, _RESEND_AT_ONCE) and _tls_cause(exc) is None


@dataclass(frozen=True, slots=True)
class BundleReply:
    """A 2xx answer to a Bundle POST: the response Bundle (transaction-response or batch-response)."""

    status: int
    bundle: dict[str, Any]


def _error_outcome(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """A one-line summary of an OperationOutcome (server text; it names paths, not resident data)."""
    if not outcome:
        return "no OperationOutcome"
    parts = []
    for issue in outcome.get("issue", [])[:3]:
        text = (issue.get("details") or {}).get("text") or issue.get("diagnostics") or issue.get("code", "")
        where = ",".join(issue.get("expression", []) or issue.get("location", []))
        parts.append(f"{text} [{where}]" if where else str(text))
    return "; ".join(parts)[:500]


def classify_response(response: httpx.Response) -> BundleReply:
    """2xx -> BundleReply; 408/425/429/5xx -> TransientSyncError (Retry-After kept); other 4xx -> Permanent."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            # Committed or not, we cannot tell: treat as ambiguous; the resend is a conditional create.
            raise TransientSyncError(f"platform answered {status} with a body that is not JSON") from exc
        return BundleReply(status=status, bundle=body if isinstance(body, dict) else {})
    if status in TRANSIENT_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientSyncError(f"platform answered {status}", retry_after=retry_after)
    outcome = _error_outcome(response)
    raise PermanentSyncError(f"platform refused the bundle with {status}: {outcome_text(outcome)}",
                             status=status, outcome=outcome)


def build_ssl_context(platform: PlatformConfig) -> ssl.SSLContext:
    """TLS verified by default (system store or `ca_file`), optional client certificate for mutual TLS.

    `verify_tls = false` (loopback test servers only: the config refuses it for any other host) skips the
    server check but still presents the client certificate.
    """
    try:
        context = ssl.create_default_context(cafile=str(platform.ca_file) if platform.ca_file else None)
        if not platform.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if platform.client_cert is not None:
            key = str(platform.client_key) if platform.client_key else None
            context.load_cert_chain(str(platform.client_cert), key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS material: {exc}", key="platform.ca_file/client_cert") from None
    return context


def _reset_advice(platform: PlatformConfig) -> str | None:
    if not str(platform.base_url).startswith("https://"):
        return None
    if platform.client_cert is None:
        return "if the platform requires mutual TLS, set platform.client_cert and client_key"
    return "check that the platform accepts platform.client_cert (mutual TLS)"


class _TokenSource:
    """Access tokens for `auth = "oauth2" | "smart"`, cached until shortly before they expire."""

    def __init__(self, platform: PlatformConfig, clock: Callable[[], float]) -> None:
        self._platform = platform
        self._clock = clock
        self._reset_advice = _reset_advice(platform)
        self._token: str | None = None
        self._expires_at = 0.0
        # Bundles go out concurrently: one fetch serves them all (and one 401 answer refreshes once).
        self._lock = asyncio.Lock()

    def invalidate(self, refused: str | None) -> None:
        """The platform refused `refused`: forget it, unless a concurrent send already replaced it."""
        if refused is None or refused == self._token:
            self._token = None

    async def token(self, client: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            return await self._fetch(client)

    async def _fetch(self, client: httpx.AsyncClient) -> str:
        data = await asyncio.to_thread(self._grant_form)
        try:
            response = await client.post(str(self._platform.token_url), data=data,
                                         headers={"Accept": "application/json"})
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise transport_failure(exc, "token endpoint", reset_advice=self._reset_advice) from exc
        if response.status_code in TRANSIENT_STATUSES or response.status_code >= 500:
            raise TransientSyncError(f"token endpoint answered {response.status_code}",
                                     retry_after=parse_retry_after(response.headers.get("retry-after")))
        if response.status_code != 200:
            # Credentials are wrong: no record is at fault, so this must not dead-letter anything.
            raise TransientSyncError(f"token endpoint refused the credentials ({response.status_code})",
                                     advice="check platform.client_id and the secret/key files")
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise TransientSyncError("token endpoint answered 200 without a usable access_token") from exc
        self._token = token
        self._expires_at = self._clock() + max(0.0, lifetime - min(60.0, lifetime / 5))
        return self._token

    def _grant_form(self) -> dict[str, str]:
        p = self._platform
        form = {"grant_type": "client_credentials", "scope": p.scope}
        if p.auth == "oauth2":
            form["client_id"] = str(p.client_id)
            form["client_secret"] = read_secret(Path(str(p.client_secret_file)), purpose="OAuth2 client secret")
            return form
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = self._signed_assertion()
        return form

    def _signed_assertion(self) -> str:
        """SMART Backend Services: a short-lived JWT signed with our private key (RS384 or ES384)."""
        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        p = self._platform
        pem = read_secret(Path(str(p.private_key_file)), purpose="SMART private key").encode()
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError("the SMART private key is not an unencrypted PEM key",
                              key="platform.private_key_file") from exc
        algorithm = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
        now = int(self._clock())
        # SMART Backend Services: iss = sub = client_id, aud = the token URL, exp at most 5 min ahead, a
        # fresh jti per assertion; the header names the key (kid) so the server can pick it from our JWK Set.
        claims = {"iss": p.client_id, "sub": p.client_id, "aud": p.token_url, "jti": str(uuid.uuid4()),
                  "iat": now, "exp": now + 300}
        kid = p.key_id or jwk_thumbprint(key.public_key())
        return jwt.encode(claims, key, algorithm=algorithm,  # type: ignore[arg-type]
                          headers={"kid": kid, "typ": "JWT"})


def jwk_thumbprint(public_key: Any) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an RSA or EC public key: the default `kid`."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def b64(number: int, size: int | None = None) -> str:
        raw = number.to_bytes(size or max(1, (number.bit_length() + 7) // 8), "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        members = {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_numbers()
        size = (public_key.curve.key_size + 7) // 8
        members = {"crv": f"P-{public_key.curve.key_size}", "kty": "EC", "x": b64(point.x, size),
                   "y": b64(point.y, size)}
    else:
        raise ConfigError("the SMART private key must be RSA or EC", key="platform.private_key_file")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


class FhirClient:
    """One keep-alive connection pool to the platform; `post_bundle` sends one Bundle and classifies the answer.

    Raises TransientSyncError (timeouts, connection errors, 408/429/5xx, credentials refused) or
    PermanentSyncError (other 4xx, with the OperationOutcome). Inside one attempt, tenacity resends once at
    once after a dropped connection: safe because every entry is a conditional create.
    """

    def __init__(self, platform: PlatformConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.time,
                 max_connections: int = 4, compress_requests: bool = False) -> None:
        if not platform.base_url:
            raise ConfigError("no platform base URL configured", key="platform.base_url")
        self._platform = platform
        self._sleep = sleep
        self._compress = compress_requests
        self._tokens = _TokenSource(platform, clock) if platform.auth in ("oauth2", "smart") else None
        self._bearer: str | None = None
        timeout = httpx.Timeout(connect=platform.timeout_connect, read=platform.timeout_read,
                                write=platform.timeout_read, pool=platform.timeout_connect)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                              keepalive_expiry=30.0)
        self._http = httpx.AsyncClient(
            base_url=platform.base_url.rstrip("/") + "/", timeout=timeout, limits=limits,
            verify=build_ssl_context(platform) if transport is None else True, transport=transport,
            headers={"Accept": FHIR_JSON, "Accept-Encoding": "gzip", "User-Agent": "healthhut-sync"})

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _auth_header(self) -> dict[str, str]:
        if self._platform.auth == "bearer":
            if self._bearer is None:
                path = Path(str(self._platform.token_file))
                self._bearer = await asyncio.to_thread(read_secret, path, purpose="bearer token")
            return {"Authorization": f"Bearer {self._bearer}"}
        if self._tokens is not None:
            return {"Authorization": f"Bearer {await self._tokens.token(self._http)}"}
        return {}

    def _forget_credentials(self, refused: dict[str, str]) -> None:
        self._bearer = None  # re-read: the token file may have been rotated
        if self._tokens is not None:
            self._tokens.invalidate(refused.get("Authorization", "").removeprefix("Bearer ") or None)

    async def post_bundle(self, body: bytes) -> BundleReply:
        """POST a Bundle to the base URL; one immediate resend after a dropped connection or a 401."""
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
        if self._compress:
            body = await asyncio.to_thread(gzip.compress, body, 6)
            headers["Content-Encoding"] = "gzip"
        retrying = AsyncRetrying(stop=stop_after_attempt(2), wait=wait_fixed(0.2), sleep=self._sleep,
                                 retry=retry_if_exception(_resend_at_once), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    auth = await self._auth_header()
                    response = await self._http.post("", content=body, headers={**headers, **auth})
                    if response.status_code == 401:
                        self._forget_credentials(auth)
                        response = await self._http.post("", content=body, headers={
                            **headers, **await self._auth_header()})
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise transport_failure(exc, reset_advice=_reset_advice(self._platform)) from exc
        if response.status_code in (401, 403):
            # Not the records' fault: keep them pending rather than dead-lettering a whole backlog.
            raise TransientSyncError(f"platform refused our credentials ({response.status_code})",
                                     advice="check platform.auth and its token/key files")
        return classify_response(response)


def dump_outcome(outcome: dict[str, Any] | None) -> str | None:
    return None if outcome is None else json.dumps(outcome, separators=(",", ":"))
