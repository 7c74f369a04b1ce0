"""Distribution names as the packaging standards compare them."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    """`Foo.Bar_baz` -> `foo-bar-baz`, the name normalization of the PyPA's "Names and
    normalization" specification (PEP 503). packaging's canonicalize_name does the same,
    but importing packaging.utils also imports its version and wheel-tag machinery, some
    18 ms that a no-op build would pay for one regular expression."""
    return _SEPARATORS.sub("-", name).lower()
