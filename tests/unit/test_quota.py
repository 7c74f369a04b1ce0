from __future__ import annotations

import pytest

from layerkit import quota
from layerkit.errors import QuotaError


def test_a_layer_over_250_mib_unzipped_is_refused_with_its_largest_distributions() -> None:
    largest = [(f"dist{i}", 30_000_000 - i) for i in range(12)]
    with pytest.raises(QuotaError) as caught:
        quota.check("data.zip", 262_144_000, largest)
    message = str(caught.value)
    assert "262,144,000 bytes" in message
    assert "dist9 " in message and "dist10 " not in message  # the ten largest
    assert "exclude-runtime-provided" in message


def test_one_byte_under_the_limit_passes_and_the_limit_itself_does_not() -> None:
    # Lambda: "Unzipped size must be smaller than 262144000 bytes"
    report = quota.check("data.zip", 262_143_999, [])
    assert any("100%" in note or "99%" in note for note in report.notes)  # a note, no error
    with pytest.raises(QuotaError):
        quota.check("data.zip", 262_144_000, [])


def test_past_80_percent_and_over_the_direct_upload_are_notes() -> None:
    report = quota.check("data.zip", 220_000_000, [], zipped=60_000_000)
    assert len(report.notes) == 2
    assert "84%" in report.notes[0]
    assert "through S3" in report.notes[1]
    assert quota.check("small.zip", 1_000_000, [], zipped=300_000).notes == ()
