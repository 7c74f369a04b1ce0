"""What `layerkit build` shows a person: one aligned line per artifact, notes on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.builder.artifact_cache import BuildStatus
from layerkit.builder.pipeline import Artifact
from layerkit.cli import render


def artifact(
    name: str,
    targets: tuple[str, ...],
    files: int,
    unzipped: int,
    status: BuildStatus = BuildStatus.built,
    notes: tuple[str, ...] = (),
) -> Artifact:
    return Artifact(
        recipe=name,
        name=name,
        path=Path("dist") / f"{name}.zip",
        sha256=name[:2].encode().hex() * 16,
        targets=targets,
        files=files,
        unzipped=unzipped,
        zipped=unzipped // 3,
        status=status,
        notes=notes,
    )


def test_each_artifact_is_one_line_with_its_columns_aligned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render.built(
        [
            artifact("small", ("python3.12-x86_64",), 53, 524_288, status=BuildStatus.unchanged),
            artifact(
                "data-and-more",
                ("python3.12-x86_64", "python3.13-x86_64"),
                3082,
                124_780_544,
                notes=("data-and-more.zip is 48% of the unzipped quota",),
            ),
        ],
        None,
        as_json=False,
    )
    shown = capsys.readouterr()
    small, data = shown.out.splitlines()
    assert small.split() == [
        "unchanged", "dist/small.zip", "python3.12-x86_64", "53", "files", "0.5", "MiB",
        "unzipped", "0.2", "MiB", "zipped", "sha256", "736d736d736d",
    ]  # fmt: skip
    assert data.startswith("built ") and "python3.12-x86_64, python3.13-x86_64" in data
    assert "119.0 MiB unzipped" in data and "sha256 646164616461" in data
    # the same column starts at the same place on every line; sizes line up on the right
    for column in ("dist/", "sha256 ", " files", " MiB unzipped", " MiB zipped"):
        assert small.index(column) == data.index(column), column
    assert shown.err == "note: data-and-more.zip is 48% of the unzipped quota\n"
