"""Verifying access tokens in any service: Ed25519-signed JWTs checked against identity's JWKS.

No secret is shared between services: identity signs with its private key and publishes the public keys at
``/.well-known/jwks.json``; ``TokenVerifier`` fetches them through the service client, caches them, and
fetches again (at most every ``refetch_interval`` seconds) when a token names a key it has not seen.

Use in a router::

    @router.get("/api/things")
    async def list_things(user: CurrentUser) -> ...
    @router.post("/api/things", dependencies=[Depends(require_role("admin"))])

Service-to-service endpoints live under ``/internal/`` (the gateway routes no such path) and require the
internal token that every ``ServiceClient`` sends (``require_internal``): a user holding a valid access token
still cannot, say, confirm an order without paying.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from boxoffice.platform.clients import ServiceClient
from boxoffice.platform.internal import INTERNAL_HEADER, internal_token
from boxoffice.platform.problem_http import raises
from boxoffice.platform.problems import Forbidden, ServiceUnavailable, Unauthorized

ISSUER = "boxoffice-identity"
AUDIENCE = "boxoffice"
ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    email: str
    name: str
    roles: tuple[str, ...]

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class TokenVerifier:
    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[dict[str, Any]]],
        *,
        refetch_interval: float = 30.0,
        max_age: float = 600.0,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[Principal, float]] = {}
        self.cache_size = 50_000

    @classmethod
    def from_client(cls, client: Callable[[], ServiceClient]) -> TokenVerifier:
        async def fetch() -> dict[str, Any]:
            response = await client().get("/.well-known/jwks.json")
            if response.status_code != 200:
                raise ServiceUnavailable("the signing keys could not be fetched")
            body: dict[str, Any] = response.json()
            return body

        return cls(fetch)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (force and age < self.refetch_interval) or (not force and age < self.max_age):
                return
            jwks = await self._fetch_jwks()
            self._keys = {k["kid"]: jwt.PyJWK(k, algorithm=ALGORITHM) for k in jwks.get("keys", [])}
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> jwt.PyJWK:
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("The access token was signed with an unknown key.", slug="invalid-token") from None

    async def verify(self, token: str) -> Principal:
        """The token's principal. A token verified before is answered from memory until it expires: a
        buyer's requests carry the same token, and checking it again costs more than the query it guards."""
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        principal, expires = await self._verify(token)
        if len(self._verified) >= self.cache_size:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.", slug="invalid-token") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthorized("The access token is not an EdDSA token of ours.", slug="invalid-token")
        key = await self._key(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.", slug="token-expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.", slug="invalid-token") from None
        if claims.get("typ") != "access":
            raise Unauthorized("This is not an access token.", slug="invalid-token")
        principal = Principal(
            id=str(claims["sub"]),
            email=str(claims.get("email", "")),
            name=str(claims.get("name", "")),
            roles=tuple(claims.get("roles", ())),
        )
        return principal, float(claims["exp"])


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <access token>'.", slug="invalid-token")
    return token.strip()


@raises(401)
async def optional_user(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.service.verifier
    return await verifier.verify(token)


@raises(401)
async def current_user(request: Request) -> Principal:
    principal = await optional_user(request)
    if principal is None:
        raise Unauthorized("This needs an access token: 'Authorization: Bearer <access token>'.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only callers holding one of ``roles``."""

    @raises(403)
    async def dependency(user: CurrentUser) -> Principal:
        if not user.has_role(*roles):
            raise Forbidden(f"This needs the role {' or '.join(roles)}.")
        return user

    return dependency


async def require_internal(request: Request) -> None:
    """Lets through only calls from another boxoffice service."""
    presented = request.headers.get(INTERNAL_HEADER, "")
    expected = internal_token(request.app.state.service.settings.secret)
    if not hmac.compare_digest(presented, expected):
        raise Forbidden("This endpoint is for boxoffice services only.")
