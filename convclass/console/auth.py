"""Who is asking, for which tenant: signed JWTs (PyJWT) and the CSRF token bound to them.

Two ways to verify a token, one claim contract:

* ``secret``: HS256 with a shared secret. ``convclass-local console`` keeps one per work directory and signs
  a token per demo tenant; a deployment may use one from Secrets Manager.
* ``jwks_url``: RS256/ES256 tokens of the customers' identity provider (Cognito, Auth0 ...), the same tokens
  the API Gateway JWT authorizer checks in front of the app. The app checks them again: the gateway is one
  layer, the tenant scoping in the app is the one that must hold.

Required claims: ``sub`` (the actor, recorded with every decision), ``exp``, ``iat``, ``aud``, ``iss`` and the
tenant claim (``tenant`` unless configured, e.g. ``custom:tenant`` for Cognito), which must be a valid tenant
id. The browser sends the token as the ``Authorization: Bearer`` header or the HttpOnly ``cc_session`` cookie
set by ``/login``.

CSRF: state-changing requests are POSTs carrying a form field equal to ``csrf_token(token)``, an HMAC of
the session token under a key only the server knows: a page from another origin can neither read nor
compute it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from convclass import layout
from convclass.errors import ConvclassError

ISSUER = "convclass-console"
AUDIENCE = "convclass-console"
TENANT_CLAIM = "tenant"
SESSION_COOKIE = "cc_session"
CSRF_FIELD = "csrf"
SECRET_FILE = "console-secret"  # noqa: S105 - a file name, not a secret
_HS_ALGORITHMS = ["HS256"]
_ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
_LEEWAY_S = 30


class NotAuthenticated(ConvclassError):
    """No token, or one that is not valid for this console (signature, expiry, audience, tenant claim)."""


@dataclass(frozen=True)
class Principal:
    """The verified caller: one tenant, one actor."""

    tenant: str
    subject: str
    token: str


class TokenVerifier:
    """Verify (and, with a shared secret, issue) console tokens."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        jwks_url: str | None = None,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        tenant_claim: str = TENANT_CLAIM,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise ValueError("configure exactly one of a shared secret or a JWKS URL")
        if secret is not None and len(secret) < 32:
            raise ValueError("the console's shared secret must be at least 32 bytes")
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self.issuer, self.audience, self.tenant_claim = issuer, audience, tenant_claim
        # CSRF tokens are HMACs under a key derived from the secret (or a per-process key with JWKS).
        self._csrf_key = (
            hmac.new(secret, b"convclass-console-csrf", hashlib.sha256).digest()
            if secret
            else (secrets.token_bytes(32))
        )

    def issue(self, tenant: str, subject: str, *, ttl_s: int = 8 * 3600) -> str:
        """A token for ``tenant`` (shared-secret mode only: local runs and tests)."""
        if self._secret is None:
            raise ValueError("tokens are issued by the identity provider when a JWKS URL is configured")
        layout.validate_id(tenant, "tenant id")
        now = int(time.time())
        claims = {
            "sub": subject,
            self.tenant_claim: tenant,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        try:
            if self._secret is not None:
                key: Any = self._secret
                algorithms = _HS_ALGORITHMS
            else:
                assert self._jwks is not None
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = _ASYMMETRIC_ALGORITHMS
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"token refused: {type(exc).__name__}") from None
        tenant, subject = claims.get(self.tenant_claim), claims.get("sub")
        if not isinstance(tenant, str) or not isinstance(subject, str) or not subject:
            raise NotAuthenticated(f"token lacks the {self.tenant_claim!r} or 'sub' claim")
        try:
            layout.validate_id(tenant, "tenant id")
        except ValueError:
            raise NotAuthenticated("token names an invalid tenant id") from None
        return Principal(tenant=tenant, subject=subject, token=token)

    def csrf_token(self, principal: Principal) -> str:
        return hmac.new(self._csrf_key, principal.token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, principal: Principal, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(self.csrf_token(principal), str(value))


def workdir_secret(workdir: Path) -> bytes:
    """The local console's signing secret: created once per work directory (mode 0600), reused after."""
    path = workdir / SECRET_FILE
    if not path.is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())
