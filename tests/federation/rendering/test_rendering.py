"""Rendering: the exact documents the default templates produce, escaping, limits, templates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.rendering.html_sanitizer import html_to_text
from federation.rendering.posts import RenderingAccount, render_post
from federation.rendering.templates import TemplateProblem, check_template
from federation.sources.events import EventImage, SourceEvent
from federation.sources.forge_events import milestone_event, star_event

WHEN = datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
OBJECT_ID = "http://relay.test/objects/0001"
CONTEXT = [
    "https://www.w3.org/ns/activitystreams",
    {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"},
]
PUBLIC = ["https://www.w3.org/ns/activitystreams#Public"]
REL = 'rel="nofollow noopener noreferrer"'
ACCOUNT = RenderingAccount(
    handle="blog",
    actor="http://relay.test/users/blog",
    followers="http://relay.test/users/blog/followers",
)
REPOSITORY_URL = "https://forge.example.org/acme/widget"


def render(event: SourceEvent, account: RenderingAccount = ACCOUNT):
    return render_post(
        event, account, object_id=OBJECT_ID, published=WHEN, base_url="http://relay.test"
    )


def blog_post(**changes) -> SourceEvent:
    fields = {
        "source": "cms",
        "kind": "post",
        "action": "published",
        "source_id": "post-1",
        "title": "Hello, fediverse",
        "url": "https://blog.example.com/hello",
        "summary": "Our blog now federates.",
    }
    return SourceEvent(**{**fields, **changes})


def note(content: str, *, url: str, **extra) -> dict:
    document = {
        "@context": CONTEXT,
        "id": OBJECT_ID,
        "type": "Note",
        "attributedTo": "http://relay.test/users/blog",
        "published": "2024-05-14T09:12:44Z",
        "url": url,
        "to": PUBLIC,
        "cc": ["http://relay.test/users/blog/followers"],
    }
    summary = extra.pop("summary", None)
    if summary is not None:
        document["summary"] = summary
    document["sensitive"] = extra.pop("sensitive", False)
    document["content"] = content
    if "language" in extra:
        document["contentMap"] = {extra.pop("language"): content}
    document["tag"] = extra.pop("tag", [])
    document["attachment"] = extra.pop("attachment", [])
    assert not extra
    return document


def link(url: str) -> str:
    return f'<p><a href="{url}" {REL}>{url}</a></p>'


def test_default_blog_post_note_with_hashtags_image_language_and_warning():
    event = blog_post(
        tags=("Fediverse", "Open Source"),
        image=EventImage("https://blog.example.com/hello.png", "A waving hand"),
        language="de",
        content_warning="Long read",
    )
    hashtags = (
        f'<p><a href="http://relay.test/tags/fediverse" class="mention hashtag" {REL}>'
        f"#<span>Fediverse</span></a> "
        f'<a href="http://relay.test/tags/opensource" class="mention hashtag" {REL}>'
        f"#<span>OpenSource</span></a></p>"
    )
    content = (
        "<p><strong>Hello, fediverse</strong></p><p>Our blog now federates.</p>"
        + link("https://blog.example.com/hello")
        + hashtags
    )
    assert render(event).document == note(
        content,
        url="https://blog.example.com/hello",
        summary="Long read",
        sensitive=True,
        language="de",
        tag=[
            {"type": "Hashtag", "href": "http://relay.test/tags/fediverse", "name": "#Fediverse"},
            {
                "type": "Hashtag",
                "href": "http://relay.test/tags/opensource",
                "name": "#OpenSource",
            },
        ],
        attachment=[
            {
                "type": "Image",
                "mediaType": "image/png",
                "url": "https://blog.example.com/hello.png",
                "name": "A waving hand",
            }
        ],
    )


def test_default_release_note_renders_the_notes_from_markdown():
    event = SourceEvent(
        source="forgejo",
        kind="release",
        action="published",
        source_id="acme/widget#release:42",
        title="Widget 1.4",
        url=f"{REPOSITORY_URL}/releases/tag/v1.4.0",
        content="- fast\n- small",
        content_format="markdown",
        repository="acme/widget",
        tag_name="v1.4.0",
    )
    content = (
        "<p>acme/widget v1.4.0 released: Widget 1.4</p><ul><li>fast</li><li>small</li></ul>"
        + link(f"{REPOSITORY_URL}/releases/tag/v1.4.0")
    )
    assert render(event).document == note(content, url=f"{REPOSITORY_URL}/releases/tag/v1.4.0")


def test_default_prerelease_note_says_pre_release():
    event = SourceEvent(
        source="forgejo",
        kind="release",
        action="published",
        source_id="r",
        title="v2.0.0-rc.1",
        url=REPOSITORY_URL,
        repository="acme/widget",
        tag_name="v2.0.0-rc.1",
        prerelease=True,
    )
    content = "<p>acme/widget v2.0.0-rc.1 pre-release</p>" + link(REPOSITORY_URL)
    assert render(event).document["content"] == content


def test_default_tag_note():
    event = SourceEvent(
        source="forgejo",
        kind="tag",
        action="published",
        source_id="acme/widget#tag:v1.4.0",
        title="v1.4.0",
        url=f"{REPOSITORY_URL}/src/tag/v1.4.0",
        repository="acme/widget",
        tag_name="v1.4.0",
    )
    content = "<p>New tag v1.4.0 in acme/widget</p>" + link(f"{REPOSITORY_URL}/src/tag/v1.4.0")
    assert render(event).document == note(content, url=f"{REPOSITORY_URL}/src/tag/v1.4.0")


def test_default_star_note():
    event = star_event("forgejo", "acme/widget", REPOSITORY_URL, "carol", 10)
    content = "<p>carol starred acme/widget</p>" + link(REPOSITORY_URL)
    assert render(event).document == note(content, url=REPOSITORY_URL)


def test_default_star_milestone_note():
    event = milestone_event("forgejo", "acme/widget", REPOSITORY_URL, 100)
    content = "<p>acme/widget reached 100 stars!</p>" + link(REPOSITORY_URL)
    assert render(event).document == note(content, url=REPOSITORY_URL)


def test_hostile_title_comes_out_as_inert_text():
    rendered = render(blog_post(title='<script>alert("x")</script><img src=x onerror=alert(1)>'))
    content = rendered.document["content"]
    assert "<script" not in content and "<img" not in content
    assert content.startswith(
        '<p><strong>&lt;script&gt;alert("x")&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;'
    )


def test_hostile_tags_become_plain_hashtags():
    rendered = render(blog_post(tags=('<img src=x onerror="alert(1)">fun', "a\"b'c", "1234")))
    assert [tag["name"] for tag in rendered.document["tag"]] == ["#fun", "#ABC"]
    assert "onerror" not in rendered.document["content"]


def test_image_alt_text_loses_markup():
    event = blog_post(
        image=EventImage("https://x.example/i.webp", "A <b>bold</b> <script>x</script>cat")
    )
    [attachment] = render(event).document["attachment"]
    assert attachment == {
        "type": "Image",
        "mediaType": "image/webp",
        "url": "https://x.example/i.webp",
        "name": "A bold cat",
    }


def test_content_warning_is_plain_text_and_marks_sensitive():
    document = render(blog_post(content_warning="<i>spoilers</i> ahead")).document
    assert (document["summary"], document["sensitive"]) == ("spoilers ahead", True)


def test_sensitive_flag_without_warning_marks_sensitive_only():
    document = render(blog_post(sensitive=True)).document
    assert document["sensitive"] is True
    assert "summary" not in document


def test_account_language_applies_when_the_event_has_none():
    account = RenderingAccount("blog", ACCOUNT.actor, ACCOUNT.followers, language="fr")
    assert list(render(blog_post(), account).document["contentMap"]) == ["fr"]


def test_long_post_is_cut_to_the_limit_with_an_ellipsis_and_keeps_link_and_tags():
    account = RenderingAccount("blog", ACCOUNT.actor, ACCOUNT.followers, max_post_length=120)
    rendered = render(blog_post(summary="word " * 200, tags=("news",)), account)
    assert rendered.truncated
    assert rendered.length <= 120
    assert rendered.length == len(html_to_text(rendered.document["content"]))
    assert "…" in rendered.plain_text
    assert rendered.plain_text.endswith("https://blog.example.com/hello\n\n#news")


def test_short_post_is_not_cut():
    rendered = render(blog_post())
    assert not rendered.truncated
    assert rendered.plain_text == (
        "Hello, fediverse\n\nOur blog now federates.\n\nhttps://blog.example.com/hello"
    )


def test_article_carries_name_summary_and_full_content():
    account = RenderingAccount("blog", ACCOUNT.actor, ACCOUNT.followers, object_type="Article")
    event = blog_post(content="# Heading\n\nLong **body**.", content_format="markdown")
    document = render(event, account).document
    assert document["type"] == "Article"
    assert document["name"] == "Hello, fediverse"
    assert document["summary"] == "Our blog now federates."
    assert document["content"].startswith("<h1>Heading</h1><p>Long <strong>body</strong>.</p>")


def test_custom_template_is_used_and_autoescaped():
    account = RenderingAccount(
        "blog", ACCOUNT.actor, ACCOUNT.followers, templates={"post": "<p>New: {{ title }}</p>"}
    )
    rendered = render(blog_post(title="<b>Big</b> news", url=None), account)
    assert rendered.document["content"] == "<p>New: &lt;b&gt;Big&lt;/b&gt; news</p>"


def test_markup_written_into_a_template_is_sanitized():
    account = RenderingAccount(
        "blog",
        ACCOUNT.actor,
        ACCOUNT.followers,
        templates={"post": '<p onclick="x()">{{ title }}</p><script>alert(1)</script>'},
    )
    assert render(blog_post(url=None), account).document["content"] == "<p>Hello, fediverse</p>"


def test_template_cannot_reach_python_internals():
    source = "{{ title.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(TemplateProblem):
        check_template(source)


def test_template_that_does_not_compile_is_refused():
    with pytest.raises(TemplateProblem, match="does not compile"):
        check_template("{% if %}")
