"""Hashtag pages: where the links in our posts' hashtags lead."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import select

from service.db.models import Post
from service.web.dependencies import SessionDep
from service.web.page_templates import templates
from service.web.routes.actors import PAGE_CSP, post_view

router = APIRouter(tags=["pages"])

# Tagged posts are found among the newest published posts; a tag page is a convenience,
# not an archive, so the scan stays bounded.
SCANNED_POSTS = 500
SHOWN_POSTS = 40


def has_tag(document: dict[str, object], tag: str) -> bool:
    tags = document.get("tag")
    if not isinstance(tags, list):
        return False
    wanted = f"#{tag}".casefold()
    return any(
        isinstance(item, dict)
        and item.get("type") == "Hashtag"
        and str(item.get("name", "")).casefold() == wanted
        for item in tags
    )


@router.get("/tags/{tag}", response_model=None)
async def tag_page(
    request: Request, session: SessionDep, tag: str = Path(max_length=100)
) -> Response:
    documents = (
        await session.scalars(
            select(Post.document)
            .where(Post.state == "published")
            .order_by(Post.published_at.desc(), Post.id.desc())
            .limit(SCANNED_POSTS)
        )
    ).all()
    posts = [post_view(doc) for doc in documents if has_tag(doc, tag)][:SHOWN_POSTS]
    return templates.TemplateResponse(
        request,
        "tag.html",
        {"tag": tag, "posts": posts},
        headers={"Content-Security-Policy": PAGE_CSP},
    )
