"""Users, groups (departments), memberships, and API tokens."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine import identity
from engine.errors import Forbidden, NotFound
from engine.models import Group, Membership, User
from engine.variables import format_date

from . import render, schemas
from .auth import engine, locked_message, password_login, principal
from .blueprint import Blueprint
from .paging import page

blp = Blueprint("identity", __name__, url_prefix="/engine-rest", description="Users and groups")
tokens = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="API tokens (extension)")


@blp.route("/user/create", methods=["POST"])
@blp.arguments(schemas.CreateUserBody)
@blp.response(204)
def create_user(body):
    identity.require_admin(principal(), "creating users")
    profile, credentials = body["profile"], body.get("credentials") or {}
    with engine().uow() as uow:
        identity.create_user(uow.session, profile["id"], credentials.get("password"), profile.get("firstName"),
                             profile.get("lastName"), profile.get("email"), actor=principal().user_id)
        uow.commit()


@blp.route("/user/<user_id>/credentials", methods=["PUT"])
@blp.arguments(schemas.PasswordBody)
@blp.response(204)
def set_password(body, user_id):
    """An admin sets anyone's password; a user changes their own, giving the current one
    in `authenticatedUserPassword` (Camunda's field)."""
    me = principal()
    if me.user_id != user_id:
        identity.require_admin(me, "changing another user's password")
    elif not me.is_admin:
        # the current password is a password guess like any login: it counts (a stolen
        # token must not become an unlimited oracle), and a locked account cannot change it
        current = body.get("authenticatedUserPassword")
        login = password_login(me.user_id, current) if current else None
        if login is not None and login.refused == identity.LOCKED:
            raise Forbidden(locked_message(me.user_id, login.locked_until), userId=me.user_id)
        identity.require_current_password(me, login)
    with engine().uow() as uow:
        identity.set_password(uow.session, user_id, body["password"], actor=me.user_id)
        uow.commit()


@blp.route("/user/<user_id>/unlock", methods=["POST"])
@blp.response(204)
def unlock_user(user_id):
    """Lift a lock left by wrong passwords (Camunda's POST /user/{id}/unlock), and reset the count."""
    identity.require_admin(principal(), "unlocking users")
    with engine().uow() as uow:
        identity.unlock(uow.session, user_id, actor=principal().user_id)
        uow.commit()


@blp.route("/user")
@blp.arguments(schemas.IdentityQuery, location="query")
@blp.response(200, schemas.UserProfile(many=True))
def list_users(args):
    with engine().uow(write=False) as uow:
        stmt = select(User).order_by(User.id)
        if args.get("id"):
            stmt = stmt.where(User.id == args["id"])
        if args.get("memberOfGroup"):
            stmt = stmt.join(Membership, Membership.user_id == User.id).where(
                Membership.group_id == args["memberOfGroup"])
        return [render.user(u) for u in uow.session.execute(page(stmt, args)).scalars()]


@blp.route("/user/<user_id>/profile")
@blp.response(200, schemas.UserProfile)
def user_profile(user_id):
    with engine().uow(write=False) as uow:
        row = uow.session.get(User, user_id)
        if row is None:
            raise NotFound(f"User with id {user_id} does not exist")
        return render.user(row)


@blp.route("/group/create", methods=["POST"])
@blp.arguments(schemas.Group)
@blp.response(204)
def create_group(body):
    identity.require_admin(principal(), "creating groups")
    with engine().uow() as uow:
        identity.create_group(uow.session, body["id"], body.get("name"), body.get("type"), actor=principal().user_id)
        uow.commit()


@blp.route("/group")
@blp.arguments(schemas.IdentityQuery, location="query")
@blp.response(200, schemas.Group(many=True))
def list_groups(args):
    with engine().uow(write=False) as uow:
        stmt = select(Group).order_by(Group.id)
        if args.get("id"):
            stmt = stmt.where(Group.id == args["id"])
        if args.get("member"):
            stmt = stmt.join(Membership, Membership.group_id == Group.id).where(Membership.user_id == args["member"])
        return [render.group(g) for g in uow.session.execute(page(stmt, args)).scalars()]


@blp.route("/group/<group_id>/members/<user_id>", methods=["PUT"])
@blp.response(204)
def add_member(group_id, user_id):
    identity.require_admin(principal(), "changing group membership")
    with engine().uow() as uow:
        identity.add_member(uow.session, group_id, user_id, actor=principal().user_id)
        uow.commit()


@blp.route("/group/<group_id>/members/<user_id>", methods=["DELETE"])
@blp.response(204)
def remove_member(group_id, user_id):
    identity.require_admin(principal(), "changing group membership")
    with engine().uow() as uow:
        identity.remove_member(uow.session, group_id, user_id, actor=principal().user_id)
        uow.commit()


@blp.route("/identity/verify", methods=["POST"])
@blp.arguments(schemas.VerifyBody)
@blp.response(200, schemas.VerifyResult)
def verify(body):
    """Camunda's credential check: {"authenticatedUser", "authenticated"}."""
    login = password_login(body["username"], body["password"])      # an oracle for passwords: failures count
    return {"authenticatedUser": body["username"], "authenticated": login.principal is not None}


@tokens.route("", methods=["POST"])
@tokens.arguments(schemas.TokenBody)
@tokens.response(201, schemas.Token)
def issue(body):
    """A Bearer token for the calling user (shown once; only its hash is stored)."""
    ttl = timedelta(hours=body["ttlHours"]) if body.get("ttlHours") else None
    with engine().uow() as uow:
        row, token = identity.issue_token(uow.session, principal().user_id, body.get("label"), ttl,
                                          actor=principal().user_id)
        uow.commit()
        return {"id": row.id, "token": token, "label": row.label, "expires": format_date(row.expires)}


@tokens.route("/<token_id>", methods=["DELETE"])
@tokens.response(204)
def revoke(token_id):
    with engine().uow() as uow:
        identity.revoke_token(uow.session, principal(), token_id)
        uow.commit()
