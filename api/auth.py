"""Authentication for every API request: HTTP Basic or a Bearer token.

The principal (user and groups) is put on `flask.g`; services decide what it may do."""
from __future__ import annotations

import base64
import logging

from flask import current_app, g, request

from engine.authz import with_roles
from engine.db import reading
from engine.errors import Unauthorized, UnsupportedMediaType
from engine.identity import LOCKED, Login, Principal, authenticate_token, check_password, record_login
from engine.variables import format_date

log = logging.getLogger(__name__)

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
    login = None
    if scheme.lower() == "basic":
        try:
            user_id, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except ValueError:          # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            raise Unauthorized("malformed Basic credentials") from None
        login = password_login(user_id, password)
        found = login.principal
    elif scheme.lower() == "bearer" and credentials:
        with reading(engine().db) as conn:
            found = authenticate_token(conn, credentials.strip())
    else:
        raise Unauthorized("authentication required: send HTTP Basic credentials or a Bearer token")
    if found is None:
        if login is not None and login.refused == LOCKED:
            raise Unauthorized(locked_message(user_id, login.locked_until))
        raise Unauthorized("unknown user, wrong password, or a revoked or expired token")
    g.principal = with_roles(found, engine().settings.supervisors_group)
    if request.content_length and not (request.is_json or request.mimetype == "multipart/form-data"):
        # webargs reads a JSON body only when it is declared as one: the body would be ignored,
        # and the request refused for the fields it does hold (or, worse, run without them)
        raise UnsupportedMediaType(
            f"{request.method} {path}: the body is sent as {request.mimetype or 'no content type'!r}; send it as "
            "JSON with the header 'Content-Type: application/json' (a deployment as multipart/form-data)")


def password_login(user_id: str, password: str) -> Login:
    """Check a password (Basic auth, identity/verify, the current password of a password
    change) and write what the attempt changes.  The check runs on a bare connection, not
    a unit of work: two Core statements need no ORM session, and every request pays for
    this (bench/bench_http.py)."""
    with reading(engine().db) as conn:
        login = check_password(conn, user_id, password)
    return settle_login(user_id, login) if login.needs_writing else login


def settle_login(user_id: str, login: Login) -> Login:
    """Count a failure (or clear the count after a success) and audit refusals, in a
    transaction of its own.  A failure to write is logged; the answer stands."""
    settings = engine().settings
    try:
        with engine().uow() as uow:
            login = record_login(uow.session, user_id, login, settings.login_max_attempts,
                                 settings.login_lock_minutes, engine().login_refusals)
            uow.commit()
    except Exception:                                   # noqa: BLE001 - the 401 (or the login) stands regardless
        log.exception("could not record a login attempt of %r", user_id[:64])
    return login


def locked_message(user_id: str, until) -> str:
    return (f"user '{user_id}' is locked after {engine().settings.login_max_attempts} wrong passwords in a row "
            f"until {format_date(until)}; an administrator can unlock it sooner "
            f"(POST /engine-rest/user/{user_id}/unlock)")
