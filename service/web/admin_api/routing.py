"""Admin API for what each account publishes (routing rules) and how (post templates)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from federation.rendering.templates import DEFAULT_TEMPLATES, TemplateProblem, check_template
from service.web.dependencies import AdminDep, SessionDep
from service.web.problems import Problem
from service.web.routes.actors import load_account

router = APIRouter(
    prefix="/api/admin/accounts/{handle}", tags=["admin: routing"], dependencies=[AdminDep]
)

Source = Literal["cms", "ghost", "forgejo", "github", "api", "*"]
EventKind = Literal["post", "release", "tag", "star", "star_milestone", "*"]


class RoutingRule(BaseModel):
    """One rule; an event matches when every condition the rule names holds."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Source] | None = Field(None, description="Omitted: any source.")
    events: list[EventKind] | None = Field(None, description="Omitted: any kind of event.")
    repositories: list[str] | None = Field(
        None, max_length=100, description="Glob patterns such as `acme/*`."
    )
    tags: list[str] | None = Field(
        None, max_length=100, description="Glob patterns for the git tag, or a post's tags."
    )
    prereleases: bool = Field(False, description="Publish pre-releases too.")


class Routing(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {"sources": ["cms"], "events": ["post"]},
                        {
                            "sources": ["forgejo", "github"],
                            "events": ["release", "star_milestone"],
                            "repositories": ["acme/*"],
                            "tags": ["v*"],
                        },
                    ]
                }
            ]
        },
    )

    rules: list[RoutingRule] = Field(default_factory=list, max_length=50)


class Templates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    templates: dict[Literal["post", "release", "tag", "star", "star_milestone"], str] = Field(
        default_factory=dict,
        description="Jinja2 (sandboxed, autoescaped) per event kind; missing kinds use defaults.",
    )


class TemplatesView(Templates):
    defaults: dict[str, str]


@router.get("/routing", response_model=Routing, response_model_exclude_none=True)
async def get_routing(handle: str, session: SessionDep) -> Routing:
    account = await load_account(session, handle)
    return Routing.model_validate(account.routing or {"rules": []})


@router.put("/routing", response_model=Routing, response_model_exclude_none=True)
async def set_routing(handle: str, body: Routing, session: SessionDep) -> Routing:
    account = await load_account(session, handle)
    account.routing = body.model_dump(exclude_none=True)
    await session.flush()
    return body


@router.get("/templates", response_model=TemplatesView)
async def get_templates(handle: str, session: SessionDep) -> TemplatesView:
    account = await load_account(session, handle)
    return TemplatesView.model_validate(
        {"templates": account.templates or {}, "defaults": dict(DEFAULT_TEMPLATES)}
    )


@router.put("/templates", response_model=TemplatesView)
async def set_templates(handle: str, body: Templates, session: SessionDep) -> TemplatesView:
    account = await load_account(session, handle)
    problems = []
    for kind, source in body.templates.items():
        try:
            check_template(source)
        except TemplateProblem as exc:
            problems.append({"name": f"templates.{kind}", "reason": str(exc)})
    if problems:
        raise Problem(
            422,
            "Templates failed validation: " + ", ".join(item["name"] for item in problems),
            type_="validation-error",
            title="Invalid request",
            errors=problems,
        )
    account.templates = {str(kind): source for kind, source in body.templates.items()}
    await session.flush()
    return TemplatesView.model_validate(
        {"templates": account.templates, "defaults": dict(DEFAULT_TEMPLATES)}
    )
