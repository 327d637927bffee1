"""Authentication for every API request: HTTP Basic or a Bearer token.

The principal (user and groups) is put on `flask.g`; services decide what it may do."""
from __future__ import annotations

import base64
import binascii

from flask import current_app, g, request

from engine.errors import Unauthorized
from engine.identity import Principal, authenticate_password, authenticate_token

PUBLIC = ("/engine-rest/openapi.json", "/engine-rest/docs", "/engine-rest/swagger")


def engine():
    return current_app.extensions["approvals_engine"]


def principal() -> Principal:
    return g.principal


def authenticate() -> None:
    path = request.path
    if not (path.startswith("/engine-rest") or path.startswith("/api/")) or path.startswith(PUBLIC):
        return
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    # A bare connection, not a unit of work: two Core statements need no ORM session,
    # and every request pays for this (bench/bench_http.py).
    with engine().db.connect() as conn:
        if scheme.lower() == "basic":
            try:
                user_id, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthorized("malformed Basic credentials") from None
            found = authenticate_password(conn, user_id, password)
        elif scheme.lower() == "bearer" and credentials:
            found = authenticate_token(conn, credentials.strip())
        else:
            raise Unauthorized("authentication required: send HTTP Basic credentials or a Bearer token")
    if found is None:
        raise Unauthorized("unknown user, wrong password, or a revoked or expired token")
    g.principal = found
