from __future__ import annotations

from packaging.tags import Tag

from layerkit.targets import target


def test_amazon_linux_2_accepts_every_manylinux_level_up_to_glibc_2_26_only() -> None:
    platforms = target("python3.11", "x86_64").platforms
    assert platforms[0] == "manylinux_2_26_x86_64"
    for tag in ("manylinux_2_24_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"):
        assert tag in platforms
    assert "manylinux_2_28_x86_64" not in platforms
    assert not any("musllinux" in p or "aarch64" in p for p in platforms)


def test_arm64_starts_at_manylinux2014_and_uses_aarch64_wheels() -> None:
    platforms = target("python3.12", "arm64").platforms
    assert platforms[0] == "manylinux_2_34_aarch64"
    assert platforms[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]


def test_uv_is_never_asked_for_a_newer_glibc_than_the_runtime_has() -> None:
    assert target("python3.11", "x86_64").uv_platform == "x86_64-manylinux_2_17"
    assert target("python3.13", "arm64").uv_platform == "aarch64-manylinux_2_34"


def test_native_wheels_rank_above_pure_ones_and_abi3_is_accepted() -> None:
    ranks = target("python3.12", "x86_64").tag_priority
    native = Tag("cp312", "cp312", "manylinux_2_17_x86_64")
    abi3 = Tag("cp39", "abi3", "manylinux2014_x86_64")
    pure = Tag("py3", "none", "any")
    assert ranks[native] < ranks[abi3] < ranks[pure]
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in ranks
    assert Tag("cp312", "cp312", "manylinux_2_17_aarch64") not in ranks
    assert Tag("cp312", "cp312", "musllinux_1_2_x86_64") not in ranks
