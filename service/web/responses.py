"""Response classes for the media types the relay serves."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from federation.activitypub.vocabulary import ACTIVITY_JSON, JRD_JSON


def _compact(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ActivityJSONResponse(JSONResponse):
    media_type = ACTIVITY_JSON

    def render(self, content: Any) -> bytes:
        return _compact(content)


class JRDResponse(JSONResponse):
    media_type = JRD_JSON

    def render(self, content: Any) -> bytes:
        return _compact(content)
