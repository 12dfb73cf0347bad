"""What the OpenAPI says of answers that are not JSON models: files and streamed exports declare their media types
as binary strings (tests/api/test_response_schemas.py holds every other 2xx answer to a named model)."""

from __future__ import annotations

from typing import Any

BINARY = {"type": "string", "format": "binary"}


def file_answer(*media_types: str, description: str = "文件") -> dict[str, Any]:
    """A `responses` entry for a file answer in any of `media_types` (use with `response_class=Response`, so the
    default `application/json` entry is not declared beside them)."""
    return {"description": description, "content": {media: {"schema": BINARY} for media in media_types}}
