"""Secrets never leave layerkit: credentials are removed from any text it shows or logs.

By pattern, anywhere in a text (inside quotes, backticks, after a comma, at a line's start):
the user-info of a URL (`scheme://user:password@`), secret query parameters of a URL
(`?token=`, presigned `X-Amz-Signature=`…) and `Authorization` headers. Everything else is
left byte for byte as it was, newlines included.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@'\"`<>]+@")
_QUERY = re.compile(
    r"(?i)(?P<key>[?&](?:token|access_token|auth|api[_-]?key|key|password|secret|sig|signature"
    r"|x-amz-signature|x-amz-security-token|x-amz-credential)=)[^&#\s'\"`<>]+"
)
_HEADER = re.compile(
    r"(?i)(?P<key>\bauthorization\b['\"]?\s*[:=]\s*['\"]?(?:(?:basic|bearer|token)\s+)?)"
    r"[^\s'\",}]+"
)


def redact(text: str) -> str:
    """The text with every credential replaced by ***."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _QUERY.sub(r"\g<key>***", text)
    return _HEADER.sub(r"\g<key>***", text)
