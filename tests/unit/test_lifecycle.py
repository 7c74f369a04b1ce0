"""Runtime lifecycle as data: the built-in dates, LAYERKIT_RUNTIMES_FILE over them, and
what build and audit say with each."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest

from layerkit.account.attach import findings
from layerkit.account.model import FunctionVersion
from layerkit.errors import UserError
from layerkit.recipe import load
from layerkit.targets import LIFECYCLES, RUNTIMES, RUNTIMES_PAGE, lifecycles

RECIPE = '[layer]\nname = "x"\nruntimes = ["python3.11"]\narchitectures = ["x86_64"]\n'
DAY = datetime.date(2026, 12, 2)


def overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "runtimes.toml"
    path.write_text(text)
    monkeypatch.setenv("LAYERKIT_RUNTIMES_FILE", str(path))
    return path


def function(runtime: str) -> FunctionVersion:
    return FunctionVersion("111111111111", "eu-west-1", "f", "$LATEST", (), 0, runtime)


def test_every_runtime_layerkit_builds_for_has_its_three_dates_and_source() -> None:
    for name in RUNTIMES:
        life = LIFECYCLES[name]
        assert life.deprecated and life.block_create and life.block_update, name
        assert life.deprecated < life.block_create < life.block_update, name
        assert life.source == RUNTIMES_PAGE and life.checked is not None


def test_the_file_moves_a_date_and_build_says_the_date_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = tmp_path / "x.toml"
    recipe.write_text(RECIPE)
    with caplog.at_level(logging.WARNING, logger="layerkit"):
        load(recipe, today=lambda: DAY)
    assert caplog.text == ""  # python3.11: 2027-06-30 in the table
    path = overlay(tmp_path, monkeypatch, "[python3.11]\ndeprecated = 2026-06-30\n")
    with caplog.at_level(logging.WARNING, logger="layerkit"):
        load(recipe, today=lambda: DAY)
    said = " ".join(caplog.text.split())
    assert "python3.11 was deprecated on 2026-06-30" in said
    # the other two dates are the table's, still ahead; the source is the file
    assert "creating functions is blocked from 2027-07-31" in said
    assert f"(dates from {path})" in said


def test_the_file_changes_the_audit_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert findings([function("python3.12")], {}, {}, {}, DAY) == []
    path = overlay(
        tmp_path, monkeypatch,
        "[python3.12]\ndeprecated = 2026-11-01\nblock-create = 2026-12-01\n"
        "block-update = 2027-02-01\n",
    )  # fmt: skip
    [finding] = findings([function("python3.12")], {}, {}, {}, DAY)
    assert finding.kind == "deprecated"
    assert "python3.12 was deprecated on 2026-11-01" in finding.reason
    assert "creating functions is blocked since 2026-12-01" in finding.reason
    assert f"dates from {path}" in finding.reason
    # and a date moved later takes a finding away
    overlay(tmp_path, monkeypatch, "[python3.10]\ndeprecated = 2027-10-31\n")
    assert findings([function("python3.10")], {}, {}, {}, DAY) == []


def test_a_runtime_the_table_does_not_know_can_be_given_dates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay(tmp_path, monkeypatch, "[nodejs18.x]\ndeprecated = 2025-09-01\n")
    [finding] = findings([function("nodejs18.x")], {}, {}, {}, DAY)
    assert "nodejs18.x was deprecated on 2025-09-01" in finding.reason


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[python3.11]\ndeprecated = "2027-06-30"\n', "python3.11.deprecated = '2027-06-30'"),
        ("[python3.11]\nretired = 2027-06-30\n", "python3.11.retired is not a lifecycle date"),
        ("[python3.11]\ndeprecated = 2027-06-30T00:00:00\n", "is not a TOML date"),
        ('python3.11 = "2027-06-30"\n', "python3.11 is not a lifecycle date"),
        ("python3 = 2027-06-30\n", "python3 must be a table"),
        ("[python3.11\n", "is not valid TOML"),
    ],
)
def test_a_bad_file_is_named_with_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, named: str
) -> None:
    path = overlay(tmp_path, monkeypatch, text)
    with pytest.raises(UserError) as raised:
        lifecycles()
    assert str(path) in str(raised.value) and named in str(raised.value)


def test_a_missing_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERKIT_RUNTIMES_FILE", str(tmp_path / "nowhere.toml"))
    with pytest.raises(UserError, match=r"nowhere\.toml"):
        lifecycles()
