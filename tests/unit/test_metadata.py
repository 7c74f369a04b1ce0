"""A distribution's METADATA and WHEEL files, as layerkit reports them."""

from __future__ import annotations

from layerkit.layer.metadata import parse_metadata, wheel_tags


def test_the_licence_is_the_shortest_true_statement_of_it() -> None:
    spdx = "Name: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: long text\n"
    assert parse_metadata(spdx).license == "MIT OR Apache-2.0"
    assert parse_metadata("Name: b\nVersion: 2\nLicense: BSD-3-Clause\n").license == (
        "BSD-3-Clause"
    )
    full_text = "Name: c\nVersion: 3\nLicense: Copyright (c) 2020\n        all rights\n"
    classified = full_text + "Classifier: License :: OSI Approved :: MIT License\n"
    assert parse_metadata(classified).license == "MIT License"
    assert parse_metadata(full_text).license == "see distribution"
    meta = parse_metadata("Name: d\nVersion: 4.0.1\n")
    assert (meta.name, meta.version, meta.license) == ("d", "4.0.1", "unknown")


def test_wheel_tags_expand_compressed_tag_sets() -> None:
    tags = wheel_tags(
        "Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64\n"
    )
    assert [str(t) for t in tags] == [
        "cp312-cp312-manylinux2014_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64",
    ]
