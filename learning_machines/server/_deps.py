"""What every route depends on: the gateway, and who the bearer key says the caller is."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..exceptions import ConfigurationError
from ._gateway import Gateway
from .auth import KeyRing, Principal

__all__ = ["Authenticated", "GatewayDep", "authenticate_header", "gateway_of"]

logger = logging.getLogger("learning_machines.server")

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer lm_…`")


def gateway_of(request: Request) -> Gateway:
    """The app's gateway."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def authenticate_header(keys: KeyRing, authorization: str | None) -> Principal | None:
    """The principal of an ``Authorization: Bearer …`` header value, or ``None``."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    try:
        return keys.authenticate(key.strip())
    except ConfigurationError:
        # Fail closed, and tell the operator (the caller learns nothing about the file).
        logger.exception("the keys file cannot be read; every request is refused until fixed")
        raise HTTPException(
            status_code=503, detail="the server's keys are misconfigured; see its log"
        ) from None


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="a bearer key is required: Authorization: Bearer lm_…",
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's principal; 401 without a known bearer key."""
    if credentials is None:
        raise _unauthorized()
    principal = authenticate_header(
        request.app.state.keys, f"{credentials.scheme} {credentials.credentials}"
    )
    if principal is None:
        raise _unauthorized()
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]
GatewayDep = Annotated[Gateway, Depends(gateway_of)]
