"""The treemap's geometry and a layer's breakdown, without a browser."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from layerkit.cli.pages import squarify
from layerkit.layer.breakdown import OTHER, breakdown


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=60))
def test_every_box_has_the_area_of_its_bytes_and_none_leaves_the_drawing(sizes: list[int]) -> None:
    items = [(f"d{n}", s) for n, s in enumerate(sorted(sizes, reverse=True))]
    placed = squarify(items, 0, 0, 960, 540)
    assert [name for name, *_ in placed] == [name for name, _ in items]
    scale = 960 * 540 / sum(sizes)
    for _, size, x, y, w, h in placed:
        assert abs(w * h - size * scale) <= 1e-6 * 960 * 540
        assert x >= -1e-6 and y >= -1e-6
        assert x + w <= 960 + 1e-6 and y + h <= 540 + 1e-6


def test_files_go_to_their_distribution_bytecode_included(tmp_path: Path) -> None:
    site = "python/lib/python3.12/site-packages"
    path = tmp_path / "layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{site}/big/__init__.py", "x" * 1000)
        archive.writestr(f"{site}/big/core/m.py", "x" * 5000)
        archive.writestr(f"{site}/big/__pycache__/__init__.cpython-312.pyc", "x" * 300)
        archive.writestr(f"{site}/big-1.0.dist-info/METADATA", "Name: big\nVersion: 1.0\n")
        archive.writestr(
            f"{site}/big-1.0.dist-info/RECORD",
            "big/__init__.py,,\nbig/core/m.py,,\nbig-1.0.dist-info/METADATA,,\n",
        )
        archive.writestr(f"{site}/six.py", "x" * 700)
        archive.writestr(f"{site}/__pycache__/six.cpython-312.pyc", "x" * 70)
        archive.writestr(f"{site}/six-1.17.0.dist-info/METADATA", "Name: six\nVersion: 1.17.0\n")
        archive.writestr(f"{site}/six-1.17.0.dist-info/RECORD", "six.py,,\n")
        archive.writestr("etc/app.json", "{}" * 50)
    found = breakdown(path)
    parts = {p.name: (p.size, p.bytecode) for p in found.parts}
    metadata = len("Name: big\nVersion: 1.0\n")
    record = len("big/__init__.py,,\nbig/core/m.py,,\nbig-1.0.dist-info/METADATA,,\n")
    assert parts["big"] == (1000 + 5000 + 300 + metadata + record, 300)
    six_meta = len("Name: six\nVersion: 1.17.0\n") + len("six.py,,\n")
    assert parts["six"] == (700 + 70 + six_meta, 70)  # a top-level module's bytecode is its
    assert parts[OTHER] == (100, 0)
    assert sum(p.size for p in found.parts) == found.unzipped
    inside = {p.name: p.size for p in found.inside}
    assert inside["big/core"] == 5000
