"""Secrets never leave layerkit: credentials are removed from any text it shows or logs.

By pattern, anywhere in a text (inside quotes, backticks, after a comma, at a line's start):
the user-info of a URL (`scheme://user:password@`), secret query parameters of a URL
(`?token=`, presigned `X-Amz-Signature=`…) and `Authorization` headers. Everything else is
left byte for byte as it was, newlines included.
"""

from __future__ import annotations

import re

# Patterns, not compiled ones: re compiles and caches each on the first text redacted, so
# that a command which shows nothing (a no-op build) does not pay for them at start.
_USERINFO = r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@'\"`<>]+@"
_QUERY = (
    r"(?i)(?P<key>[?&](?:token|access_token|auth|api[_-]?key|key|password|secret|sig|signature"
    r"|x-amz-signature|x-amz-security-token|x-amz-credential)=)[^&#\s'\"`<>]+"
)
_HEADER = (
    r"(?i)(?P<key>\bauthorization\b['\"]?\s*[:=]\s*['\"]?(?:(?:basic|bearer|token)\s+)?)"
    r"[^\s'\",}]+"
)


def redact(text: str) -> str:
    """The text with every credential replaced by ***."""
    text = re.sub(_USERINFO, r"\g<scheme>***@", text)
    text = re.sub(_QUERY, r"\g<key>***", text)
    return re.sub(_HEADER, r"\g<key>***", text)
