"""Credentials are removed wherever they appear in a text; nothing else changes."""

from __future__ import annotations

import pytest

from layerkit.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nhttps://u:p@h/x", "a\nhttps://***@h/x"),  # the newline is kept
        ("see `https://u:SECRET@h/simple`.", "see `https://***@h/simple`."),
        ('url="https://u:SECRET@h:8443/simple",next', 'url="https://***@h:8443/simple",next'),
        ("x,https://tok@h/a", "x,https://***@h/a"),
        ("git+ssh://git:SECRET@github.com/o/r", "git+ssh://***@github.com/o/r"),
        ("https://h/simple?token=SECRET&page=2", "https://h/simple?token=***&page=2"),
        ("https://b.s3/k?X-Amz-Signature=SECRET", "https://b.s3/k?X-Amz-Signature=***"),
        ("Authorization: Bearer SECRET", "Authorization: Bearer ***"),
        ("'Authorization': 'Basic SECRET'", "'Authorization': 'Basic ***'"),
        ('{"authorization": "SECRET"}', '{"authorization": "***"}'),
    ],
)
def test_credentials_are_replaced_wherever_they_are(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_text_without_credentials_is_unchanged_byte_for_byte() -> None:
    text = "résumé\ttabs  two spaces\r\nhttps://pypi.org/simple/ a@b.c user@host\n\n"
    assert redact(text) == text
