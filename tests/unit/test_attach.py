"""What makes a layer unable to serve a function, from its manifest and what Lambda says."""

from __future__ import annotations

import datetime

from layerkit.account.attach import findings, incompatible, problems_with, shadowed
from layerkit.account.model import FunctionVersion, LayerArn, LayerVersion
from layerkit.layer.manifest import Distribution, LayerManifest, TargetContent

A = "arn:aws:lambda:eu-west-1:123456789012:layer:a:1"
B = "arn:aws:lambda:eu-west-1:123456789012:layer:b:1"


def fn(
    runtime: str = "python3.12", arch: str = "x86_64", layers: tuple[str, ...] = ()
) -> FunctionVersion:
    return FunctionVersion("123456789012", "eu-west-1", "f", "$LATEST", layers, 0, runtime, arch)


def manifest(
    trees: dict[str, str], dists: list[tuple[str, str]], archs: tuple[str, ...] = ("x86_64",)
) -> LayerManifest:
    """trees: target id -> its site-packages; every distribution installed there."""
    return LayerManifest(
        layer="l", artifact="l", architectures=archs,
        targets={
            target: TargetContent("", "wheels", site, None,
                                  tuple(Distribution(n, v, site_packages=site) for n, v in dists))
            for target, site in trees.items()
        },
    )  # fmt: skip


def declared(runtimes: tuple[str, ...] = (), archs: tuple[str, ...] = ()) -> LayerVersion:
    return LayerVersion(LayerArn.parse(A), "", runtimes, archs, "")


def test_a_function_whose_python_finds_no_tree_of_the_layer_is_incompatible() -> None:
    only_312 = manifest(
        {"python3.12-x86_64": "python/lib/python3.12/site-packages"}, [("idna", "3.10")]
    )
    [reason] = incompatible(fn("python3.13"), None, only_312)
    assert "python/lib/python3.13/site-packages" in reason and "python3.12" in reason
    assert incompatible(fn("python3.12"), None, only_312) == []
    # A tree in python/ is imported by every version.
    assert incompatible(fn("python3.13"), None, manifest({"python3.12-x86_64": "python"}, [])) == []


def test_architecture_from_lambda_or_from_the_shared_objects() -> None:
    assert (
        "CompatibleArchitectures"
        in incompatible(fn(arch="arm64"), declared(archs=("x86_64",)), None)[0]
    )
    x86_only = manifest({"python3.12-x86_64": "python"}, [], archs=("x86_64",))
    assert "shared objects" in incompatible(fn(arch="arm64"), None, x86_only)[0]
    assert incompatible(fn(arch="arm64"), declared(), None) == []  # nothing declared: no claim


def test_the_later_layer_wins_in_one_tree_and_a_version_tree_beats_python() -> None:
    first = manifest({"t": "python"}, [("idna", "3.10")])
    second = manifest({"t": "python"}, [("idna", "3.7")])
    [(arn, reason)] = shadowed([A, B], {A: first, B: second}, "3.12")
    assert arn == B and f"{B}'s copy" in reason
    own = manifest({"t": "python/lib/python3.12/site-packages"}, [("idna", "3.10")])
    [(_, reason)] = shadowed([A, B], {A: own, B: second}, "3.12")
    assert f"{A}'s copy" in reason  # python3.12's own site-packages comes first
    # Another version's tree is never imported: no shadowing on 3.13.
    assert shadowed([A, B], {A: own, B: second}, "3.13") == []


def test_a_layer_shipping_boto3_is_reported() -> None:
    [(arn, reason)] = shadowed(
        [A], {A: manifest({"t": "python"}, [("botocore", "1.35.0")])}, "3.12"
    )
    assert arn == A and "runtime's copy" in reason


def test_deprecation_uses_the_date_and_every_declared_runtime() -> None:
    old = fn("python3.9")
    day_before = datetime.date(2025, 12, 14)
    assert findings([old], {}, {}, {}, day_before) == []
    [finding] = findings([old], {}, {}, {}, datetime.date(2025, 12, 15))
    assert finding.kind == "deprecated" and finding.layer == ""
    layer = fn("python3.12", layers=(A,))
    some = {A: declared(runtimes=("python3.9", "python3.12"))}
    assert findings([layer], {}, some, {}, datetime.date(2026, 11, 27)) == []
    every = {A: declared(runtimes=("python3.8", "python3.9"))}
    kinds = [f.kind for f in findings([layer], {}, every, {}, datetime.date(2026, 11, 27))]
    assert kinds == ["incompatible", "deprecated"]  # python3.12 is not declared, too


def test_a_change_that_does_not_fit_is_refused_with_the_numbers() -> None:
    six = tuple(f"{A[:-1]}{n}" for n in range(1, 7))
    assert any("6 layers; Lambda allows 5" in p for p in problems_with(fn(), six, {}, {}, {}))
    sizes = {A: 200_000_000, B: 70_000_000}
    [problem] = problems_with(fn(), (A, B), {}, {}, sizes)
    assert "270,000,000" in problem and "262,144,000" in problem
    assert problems_with(fn(), (A,), {}, {}, sizes) == []
