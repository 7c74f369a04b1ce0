from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.builder.install import install, runtime_overlap_warning
from layerkit.builder.lockfile import Lock, LockedDist, shipped
from layerkit.errors import IntegrityError
from layerkit.recipe import Slim
from layerkit.targets import RUNTIME_PROVIDED
from tests.wheels import make_wheel


def dist(name: str, *via: str) -> LockedDist:
    return LockedDist(name, "1.0", ("h",), via)


LOCK = Lock(
    "python3.12-x86_64",
    None,
    (
        dist("aws-lambda-powertools", "-r r.toml"),
        dist("boto3", "aws-lambda-powertools"),
        dist("botocore", "boto3", "s3transfer"),
        dist("s3transfer", "boto3"),
        dist("jmespath", "boto3", "botocore", "aws-lambda-powertools"),
        dist("urllib3", "botocore", "requests"),
        dist("requests", "-r r.toml"),
        dist("python-dateutil", "botocore"),
        dist("six", "python-dateutil"),
    ),
)


def names(dists: list[LockedDist]) -> set[str]:
    return {d.key for d in dists}


def test_excluding_a_package_leaves_out_what_only_it_needs() -> None:
    kept = names(shipped(LOCK, frozenset({"boto3", "botocore"})))
    # s3transfer, python-dateutil and six were only there for boto3/botocore;
    # jmespath and urllib3 are still needed by powertools and requests.
    assert kept == {"aws-lambda-powertools", "jmespath", "requests", "urllib3"}


def test_nothing_excluded_ships_everything_locked() -> None:
    assert names(shipped(LOCK, frozenset())) == {d.key for d in LOCK.dists}


def test_an_explicitly_excluded_package_is_dropped_even_when_others_need_it() -> None:
    assert "urllib3" not in names(shipped(LOCK, frozenset({"urllib3"})))


def test_shipping_part_of_the_runtime_stack_warns_only_outside_what_botocore_accepts() -> None:
    # requests' urllib3 2.x: botocore accepts it on Python 3.10 and later
    assert runtime_overlap_warning({"requests": "2.32.3", "urllib3": "2.5.0"}, "3.12") is None
    # not 2.2.0, which botocore excludes, nor anything past 1.26 on Python 3.9
    excluded = runtime_overlap_warning({"requests": "2.32.3", "urllib3": "2.2.0"}, "3.12")
    assert excluded is not None
    assert "ships urllib3 2.2.0 (botocore accepts >=1.25.4,!=2.2.0,<3)" in excluded
    old = runtime_overlap_warning({"urllib3": "2.5.0"}, "3.9")
    assert old is not None and "botocore accepts >=1.25.4,<1.27" in old
    # s3transfer moves with boto3: without boto3 it always warns
    assert runtime_overlap_warning({"s3transfer": "0.10.0"}, "3.12") is not None
    everything = dict.fromkeys(RUNTIME_PROVIDED, "1.0")
    assert runtime_overlap_warning(everything, "3.12") is None
    assert runtime_overlap_warning({"requests": "2.32.3", "idna": "3.7"}, "3.12") is None


def test_install_maps_wheel_members_under_site_packages_and_slims_safely(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        {
            "demo/__init__.py": b"VERSION = 1\n",
            "demo/core.pyi": b"def f() -> int: ...\n",
            "demo/tests/test_core.py": b"def test(): pass\n",
            "demo/__pycache__/core.cpython-312.pyc": b"junk",
            "demo/_speed.cpython-312-x86_64-linux-gnu.so": b"\x7fELF",
            "demo-1.0.data/purelib/demo_extra.py": b"X = 1\n",
            "demo-1.0.data/scripts/demo-cli": b"#!python\n",
        },
        executable=("demo/_speed.cpython-312-x86_64-linux-gnu.so",),
    )
    result = install(wheel, LockedDist("demo", "1.0", ("h",)), "python", Slim())
    paths = {e.path: e.mode for e in result.entries}
    assert set(paths) == {
        "python/demo/__init__.py",
        "python/demo/_speed.cpython-312-x86_64-linux-gnu.so",
        "python/demo_extra.py",
        "python/demo-1.0.dist-info/METADATA",
        "python/demo-1.0.dist-info/WHEEL",
        "python/demo-1.0.dist-info/RECORD",
    }
    assert paths["python/demo/_speed.cpython-312-x86_64-linux-gnu.so"] == 0o755
    assert paths["python/demo/__init__.py"] == 0o644
    assert result.top_level == ("demo", "demo_extra")
    assert result.license == "MIT"
    assert result.size == sum(e.size for e in result.entries)


def test_slimming_can_be_turned_off_or_narrowed(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        {"demo/tests/data.py": b"", "demo/core.pyi": b"", "other/tests/x.py": b""},
    )
    kept = install(wheel, dist("demo"), "python", Slim(tests=False, stubs=False))
    assert {"python/demo/tests/data.py", "python/demo/core.pyi"} <= {e.path for e in kept.entries}
    narrow = install(wheel, dist("demo"), "python", Slim(keep=("demo/tests",)))
    paths = {e.path for e in narrow.entries}
    assert "python/demo/tests/data.py" in paths
    assert "python/other/tests/x.py" not in paths


def test_a_wheel_with_a_path_escaping_the_layer_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "evil", "1.0", {"../../etc/cron.d/x": b"boom"})
    with pytest.raises(IntegrityError, match="unsafe path"):
        install(wheel, dist("evil"), "python", Slim())


def test_an_sdists_build_requirements_come_from_its_pyproject(tmp_path: Path) -> None:
    import io
    import tarfile

    from layerkit.builder.install import build_requirements

    def sdist(name: str, files: dict[str, str]) -> Path:
        path = tmp_path / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for member, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{name}/{member}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return path

    modern = sdist("m-1.0", {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=77", "cython>=3"]\n',
        "vendor/pyproject.toml": '[build-system]\nrequires = ["flit"]\n',  # not the sdist's
    })  # fmt: skip
    assert build_requirements(modern) == ["setuptools>=77", "cython>=3"]
    legacy = sdist("l-1.0", {"setup.py": "from setuptools import setup\nsetup()\n"})
    assert build_requirements(legacy) == ["setuptools>=40.8.0", "wheel"]
    broken = sdist("b-1.0", {"pyproject.toml": "[build-system\n"})
    assert build_requirements(broken) == ["setuptools>=40.8.0", "wheel"]
