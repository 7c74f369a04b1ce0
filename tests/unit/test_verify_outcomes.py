"""What verify makes of an import that failed: only a distribution required under an
extra is "needs extra"; a layer that ships bytecode and compiles its sources fails."""

from __future__ import annotations

from pathlib import Path

from layerkit.builder.verify import TargetResult, needs_extra

HYPOTHESIS = {
    "hypothesis": [
        "attrs>=22.2.0",
        "sortedcontainers<3.0.0,>=2.1.0",
        'pytest>=4.6; extra == "all"',
        'pytest>=4.6; extra == "pytest"',
        'numpy>=1.19.3; python_version >= "3.9" and extra == "numpy"',
    ],
    "attrs": [],
    "sortedcontainers": [],
}
MISSING = "ModuleNotFoundError: No module named '{}'"


def test_a_module_that_needs_an_extras_distribution_is_not_a_failure() -> None:
    found = needs_extra(MISSING.format("pytest"), HYPOTHESIS)
    assert found == "needs extra hypothesis[pytest] or [all]: pytest>=4.6"
    assert needs_extra(MISSING.format("numpy.core"), HYPOTHESIS) is not None  # its top level


def test_anything_else_still_fails() -> None:
    # a required distribution missing from the layer: broken, whatever the module
    assert (
        needs_extra(MISSING.format("sortedcontainers"), {**HYPOTHESIS, "sortedcontainers": []})
        is None
    )
    broken = {"hypothesis": ["sortedcontainers<3.0.0,>=2.1.0"]}
    assert needs_extra(MISSING.format("sortedcontainers"), broken) is None
    # required only on some Pythons, not under an extra
    marked = {"x": ['tomli>=1.1; python_version < "3.11"']}
    assert needs_extra(MISSING.format("tomli"), marked) is None
    # a module no distribution asks for, and errors that are not a missing module
    assert needs_extra(MISSING.format("nothing_asks"), HYPOTHESIS) is None
    assert needs_extra("ImportError: cannot import name 'x' from 'y'", HYPOTHESIS) is None
    assert needs_extra("SyntaxError: invalid syntax", HYPOTHESIS) is None


def test_a_layer_that_ships_bytecode_fails_when_its_sources_compile() -> None:
    def result(bytecode: str | None, compiled: tuple[str, ...]) -> TargetResult:
        return TargetResult(Path("l.zip"), "python3.12-x86_64", "here", {"m": "ok"}, {}, 0.1,
                            bytecode, compiled)  # fmt: skip

    assert result("cpython-312", ()).ok
    assert not result("cpython-312", ("python/m/__init__.py",)).ok
    assert result(None, ("python/m/__init__.py",)).ok  # no bytecode shipped: expected
    extra = TargetResult(Path("l.zip"), "t", "here", {"m": "needs extra x[y]: z"}, {}, 0.1)
    assert extra.ok and extra.failed == {}
