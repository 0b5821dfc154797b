"""gRPC adapter of the users service: decode, call the domain, encode. The interceptor has
already checked each rpc's permission; the domain checks the rest (self-service, escalation)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import grpc
from crm.users.v1 import user_pb2 as upb
from crm.users.v1 import users_service_pb2 as pb
from crm.users.v1 import users_service_pb2_grpc as pb_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, json_format
from sqlalchemy.engine import RowMapping

from services.kernel import listing, uploads
from services.kernel.errors import FieldViolation, InvalidArgument
from services.users import rules
from services.users.domain import TEAM_LIST_SPEC, USER_LIST_SPEC, RoleView, TeamView, UsersDomain, UserView, avatar_url
from services.users.tables import PROFILE_FIELDS

Ctx = grpc.aio.ServicerContext[Any, Any]
_USER_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken", "team"}
_SNAKE = {"firstName": "first_name", "lastName": "last_name", "leadId": "lead_id"}


def _mask(request: Any) -> set[str] | None:
    if request.HasField("update_mask") and request.update_mask.paths:
        return {_SNAKE.get(path, path) for path in request.update_mask.paths}
    return None


def user_to_proto(view: UserView) -> upb.User:
    row = view.row
    user = upb.User(
        id=str(row["id"]), tenant_id=str(row["tenant_id"]), email=row["email"], first_name=row["first_name"],
        last_name=row["last_name"], roles=list(row["roles"]), active=row["active"],
        status=rules.user_status(row["active"], row["has_password"]),
        email_verified=row["email_verified"], title=row["title"],
        avatar_url=avatar_url(row["id"]) if row["avatar_etag"] else "", team_ids=view.team_ids,
    )
    user.created_at.FromDatetime(row["created_at"])
    user.updated_at.FromDatetime(row["updated_at"])
    return user


def profile_to_proto(values: Mapping[str, Any]) -> upb.Profile:
    profile = upb.Profile(**{k: values[k] for k in (*PROFILE_FIELDS, "user_id", "first_name", "last_name", "email",
                                                    "avatar_url")})
    profile.updated_at.FromDatetime(values["updated_at"])
    return profile


def preferences_to_proto(values: Mapping[str, Any]) -> upb.Preferences:
    prefs = upb.Preferences(user_id=values["user_id"])
    prefs.preferences.SetInParent()  # `{}` rather than no member at all
    prefs.preferences.update(values["preferences"])
    prefs.updated_at.FromDatetime(values["preferences_updated_at"])
    return prefs


def role_to_proto(role: RoleView) -> upb.Role:
    out = upb.Role(id=role.id, key=role.key, name=role.name, description=role.description,
                   permissions=role.permissions, built_in=role.built_in)
    if role.created_at is not None:
        out.created_at.FromDatetime(role.created_at)
        out.updated_at.FromDatetime(role.updated_at)
    return out


def member_to_proto(row: RowMapping, lead_id: Any = None) -> upb.TeamMember:
    member = upb.TeamMember(user_id=str(row["user_id"]), first_name=row["first_name"], last_name=row["last_name"],
                            email=row["email"], lead=lead_id is not None and row["user_id"] == lead_id)
    member.added_at.FromDatetime(row["added_at"])
    return member


def team_to_proto(row: RowMapping, members: list[RowMapping] | None = None) -> upb.Team:
    team = upb.Team(id=str(row["id"]), name=row["name"], description=row["description"],
                    lead_id=str(row["lead_id"]) if row["lead_id"] else "", member_count=row["member_count"])
    if members is not None:
        team.member_ids.extend(str(m["user_id"]) for m in members)
        team.members.extend(member_to_proto(m, row["lead_id"]) for m in members)
    team.created_at.FromDatetime(row["created_at"])
    team.updated_at.FromDatetime(row["updated_at"])
    return team


def _team(view: TeamView) -> upb.Team:
    return team_to_proto(view[0], view[1])


class UsersServicer(pb_grpc.UsersServiceServicer):
    def __init__(self, domain: UsersDomain) -> None:
        self.domain = domain

    # --- users ---------------------------------------------------------------------------
    async def CreateUser(self, request: pb.CreateUserRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.create_user(
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name, roles=list(request.roles)))

    async def GetUser(self, request: pb.GetUserRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.get_user(request.id))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Ctx) -> upb.User:
        user = request.user
        values = {"first_name": user.first_name, "last_name": user.last_name, "email": user.email}
        return user_to_proto(await self.domain.update_user(request.id, values, _mask(request), list(user.roles)))

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_user(request.id)
        return empty_pb2.Empty()

    async def ListUsers(self, request: pb.ListUsersRequest, context: Ctx) -> pb.ListUsersResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        # Emails are stored lower-cased: compare with the plain (indexed) column.
        p.conditions = [
            dataclasses.replace(c, value=c.value.strip().lower()) if c.field == "email" else c
            for c in listing.conditions_from_request(request, USER_LIST_SPEC, _USER_LIST_SKIP)
        ]
        page, teams = await self.domain.list_users(p, request.team)
        users = [user_to_proto(UserView(row._mapping, teams.get(str(row.id), []))) for row in page.rows]
        return pb.ListUsersResponse(users=users, pagination=page.info())

    async def ActivateUser(self, request: pb.ActivateUserRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.set_active(request.id, True))

    async def DeactivateUser(self, request: pb.DeactivateUserRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.set_active(request.id, False, request.reason))

    # --- roles of a user -----------------------------------------------------------------
    async def AssignRole(self, request: pb.AssignRoleRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.assign_role(request.id, request.role_id))

    async def RemoveRole(self, request: pb.RemoveRoleRequest, context: Ctx) -> upb.User:
        return user_to_proto(await self.domain.remove_role(request.id, request.role_id))

    async def ListUserRoles(self, request: pb.ListUserRolesRequest, context: Ctx) -> pb.ListUserRolesResponse:
        return pb.ListUserRolesResponse(roles=[role_to_proto(r) for r in await self.domain.user_roles(request.id)])

    async def GetUserPermissions(self, request: pb.GetUserPermissionsRequest, context: Ctx) -> pb.UserPermissions:
        roles, permissions = await self.domain.user_permissions(request.id)
        return pb.UserPermissions(user_id=request.id, roles=roles, permissions=permissions)

    # --- profile, avatar, preferences ----------------------------------------------------
    async def GetProfile(self, request: pb.GetProfileRequest, context: Ctx) -> upb.Profile:
        return profile_to_proto(await self.domain.get_profile(request.id))

    async def UpdateProfile(self, request: pb.UpdateProfileRequest, context: Ctx) -> upb.Profile:
        values = {name: getattr(request.profile, name) for name in PROFILE_FIELDS}
        return profile_to_proto(await self.domain.update_profile(request.id, values, _mask(request)))

    async def UploadAvatar(self, request: pb.UploadAvatarRequest, context: Ctx) -> upb.Profile:
        try:
            upload = uploads.uploaded_file(request.file.data, request.file.content_type)
        except uploads.MultipartError as exc:
            raise InvalidArgument(exc.message, reason=exc.code,
                                  violations=[FieldViolation("file", exc.message, exc.code)]) from None
        return profile_to_proto(await self.domain.upload_avatar(request.id, upload.data))

    async def GetAvatar(self, request: pb.GetAvatarRequest, context: Ctx) -> httpbody_pb2.HttpBody:
        row = await self.domain.get_avatar(request.id)
        await context.send_initial_metadata((("etag", f'"{row["etag"]}"'), ("cache-control", "private, max-age=60")))
        return httpbody_pb2.HttpBody(content_type=row["content_type"], data=bytes(row["image"]))

    async def GetPreferences(self, request: pb.GetPreferencesRequest, context: Ctx) -> upb.Preferences:
        return preferences_to_proto(await self.domain.get_preferences(request.id))

    async def UpdatePreferences(self, request: pb.UpdatePreferencesRequest, context: Ctx) -> upb.Preferences:
        prefs = json_format.MessageToDict(request.preferences)
        return preferences_to_proto(await self.domain.update_preferences(request.id, prefs))

    # --- teams ---------------------------------------------------------------------------
    async def CreateTeam(self, request: pb.CreateTeamRequest, context: Ctx) -> upb.Team:
        team = request.team
        return _team(await self.domain.create_team({"name": team.name, "description": team.description},
                                                   team.lead_id, list(team.member_ids)))

    async def ListTeams(self, request: pb.ListTeamsRequest, context: Ctx) -> pb.ListTeamsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search)
        p.conditions = listing.conditions_from_request(request, TEAM_LIST_SPEC, {"page", "limit", "sort", "search", "memberId"})
        page = await self.domain.list_teams(p, request.member_id)
        return pb.ListTeamsResponse(teams=[team_to_proto(row._mapping) for row in page.rows], pagination=page.info())

    async def GetTeam(self, request: pb.GetTeamRequest, context: Ctx) -> upb.Team:
        return _team(await self.domain.get_team(request.id))

    async def UpdateTeam(self, request: pb.UpdateTeamRequest, context: Ctx) -> upb.Team:
        team = request.team
        return _team(await self.domain.update_team(request.id, {"name": team.name, "description": team.description},
                                                   team.lead_id, _mask(request)))

    async def DeleteTeam(self, request: pb.DeleteTeamRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_team(request.id)
        return empty_pb2.Empty()

    async def AddTeamMember(self, request: pb.AddTeamMemberRequest, context: Ctx) -> upb.TeamMember:
        return member_to_proto(await self.domain.add_member(request.id, request.user_id))

    async def RemoveTeamMember(self, request: pb.RemoveTeamMemberRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.remove_member(request.id, request.user_id)
        return empty_pb2.Empty()

    # --- custom roles and the permission catalogue ---------------------------------------
    async def ListRoles(self, request: pb.ListRolesRequest, context: Ctx) -> pb.ListRolesResponse:
        return pb.ListRolesResponse(roles=[role_to_proto(r) for r in await self.domain.list_roles()])

    async def CreateRole(self, request: pb.CreateRoleRequest, context: Ctx) -> upb.Role:
        role = request.role
        return role_to_proto(await self.domain.create_role({
            "key": role.key, "name": role.name, "description": role.description, "permissions": list(role.permissions)}))

    async def GetRole(self, request: pb.GetRoleRequest, context: Ctx) -> upb.Role:
        return role_to_proto(await self.domain.get_role(request.id))

    async def UpdateRole(self, request: pb.UpdateRoleRequest, context: Ctx) -> upb.Role:
        role = request.role
        values = {"key": role.key, "name": role.name, "description": role.description,
                  "permissions": list(role.permissions)}
        return role_to_proto(await self.domain.update_role(request.id, values, _mask(request)))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_role(request.id)
        return empty_pb2.Empty()

    async def ListPermissions(self, request: pb.ListPermissionsRequest, context: Ctx) -> pb.ListPermissionsResponse:
        return pb.ListPermissionsResponse(permissions=[
            upb.Permission(name=name, resource=name.split(":", 1)[0], action=name.split(":", 1)[1], rpcs=rpcs)
            for name, rpcs in self.domain.catalogue.items()
        ])
