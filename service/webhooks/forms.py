"""Form-encoded forge webhooks: the JSON event in the `payload` field of an
`application/x-www-form-urlencoded` body, as Forgejo, Gitea and GitHub send it when the
hook's content type is set to form.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from service.web.problems import Problem

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
PAYLOAD_FIELD = "payload"
# A forge sends one field; the cap keeps a hostile body from costing a large dictionary.
_MAX_FIELDS = 32


def is_form(content_type: str | None) -> bool:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return media_type == FORM_CONTENT_TYPE


def form_payload(body: bytes) -> bytes:
    """The `payload` field's value, as the UTF-8 bytes the sender encoded (for Forgejo and
    Gitea these are the bytes they signed). A 400 problem when the form has none, has it
    twice, or cannot be decoded."""
    try:
        fields = parse_qs(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(
            400,
            "Body is not a valid form (application/x-www-form-urlencoded)",
            type_="malformed-form",
        ) from exc
    values = fields.get(PAYLOAD_FIELD, [])
    if len(values) != 1:
        detail = "has no" if not values else "has more than one"
        raise Problem(400, f"The form {detail} `payload` field", type_="missing-payload")
    return values[0].encode("utf-8")
