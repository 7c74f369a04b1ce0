"""A bug in layerkit is one paragraph and exit 1, never a bare traceback; --debug adds it."""

from __future__ import annotations

import pytest

from layerkit.cli import app


def _broken(*args: object, **kwargs: object) -> None:
    raise KeyError("recipes")  # what a bug looks like: nothing a user could have caused


def test_an_unexpected_exception_is_one_paragraph_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app, "recipes_named", _broken)
    assert app.main(["build"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("internal error: KeyError: 'recipes'.")
    assert "--debug" in err and "report it" in err


def test_debug_shows_where_it_happened(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app, "recipes_named", _broken)
    try:
        assert app.main(["--debug", "build"]) == 1
    finally:
        app._state["debug"] = False
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_broken" in err
    assert "internal error: KeyError" in err
