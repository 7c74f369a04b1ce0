"""Whether the layers attached to a function can serve it.

A layer "works" for a function only when the function's runtime, architecture and Python
version find something in it: Lambda attaches any layer to any function and says nothing.
What a layer declares (`CompatibleRuntimes`, `CompatibleArchitectures`) is read from Lambda;
what layerkit built is known better, from its manifest: the architecture of its shared
objects and the trees each Python version imports. The same checks serve `audit` (what is
attached) and `rollout` (what is about to be).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from layerkit.account.model import CodeSigningConfig, FunctionVersion, LayerVersion
from layerkit.layer.manifest import LayerManifest
from layerkit.names import canonical
from layerkit.quota import LAYERS_PER_FUNCTION, UNZIPPED_LIMIT
from layerkit.targets import Lifecycle, lifecycles


class Kind(str, Enum):
    """What an attach-time finding says (each is also an `audit --fail-on` gate)."""

    incompatible = "incompatible"  # the layer cannot serve the function
    deprecated = "deprecated"  # the function's runtime, or every runtime the layer declares
    shadowed = "shadowed"  # two layers ship one distribution, or a layer ships boto3
    unsigned = "unsigned"  # a layer no profile the function's code signing config allows signed


KINDS = tuple(kind.value for kind in Kind)


@dataclass(frozen=True)
class Finding:
    kind: Kind
    account: str
    region: str
    function: str
    qualifier: str  # the function version
    aliases: tuple[str, ...]  # the aliases serving (or canarying) that version
    layer: str  # the layer version ARN; empty when about the function itself
    reason: str


def python_of(runtime: str) -> str | None:
    """'3.12' for python3.12; None for any other runtime."""
    if not runtime.startswith("python3."):
        return None
    return runtime.removeprefix("python")


def stage_of(runtime: str, today: datetime.date, table: Mapping[str, Lifecycle]) -> str | None:
    """What Lambda's end of support has done to a runtime by `today`, with its dates and
    their source; None while it is supported (or unknown)."""
    lifecycle = table.get(runtime)
    return lifecycle.stage(today) if lifecycle else None


def incompatible(
    fn: FunctionVersion, declared: LayerVersion | None, manifest: LayerManifest | None
) -> list[str]:
    """Why this layer cannot serve this function; empty when nothing says it cannot."""
    reasons = []
    if declared and declared.architectures and fn.architecture not in declared.architectures:
        reasons.append(
            f"the function runs on {fn.architecture}; the layer is for "
            f"{', '.join(declared.architectures)} (CompatibleArchitectures)"
        )
    if declared and declared.runtimes and fn.runtime not in declared.runtimes:
        reasons.append(
            f"the function runs {fn.runtime or 'a container image'}; the layer is for "
            f"{', '.join(declared.runtimes)} (CompatibleRuntimes)"
        )
    if manifest is None:
        return reasons
    if manifest.architectures and fn.architecture not in manifest.architectures and not reasons:
        reasons.append(
            f"the function runs on {fn.architecture}; the layer's shared objects are built "
            f"for {', '.join(manifest.architectures)}"
        )
    python = python_of(fn.runtime)
    trees = {t.site_packages for t in manifest.targets.values()} | {
        d.site_packages or "python" for t in manifest.targets.values() for d in t.distributions
    }
    imported = {"python", f"python/lib/python{python}/site-packages"}
    if python and manifest.targets and not trees & imported:
        built_for = ", ".join(sorted(trees))
        reasons.append(
            f"Python {python} imports python/ and python/lib/python{python}/site-packages; "
            f"the layer's packages are only in {built_for}, so the function cannot import them"
        )
    return reasons


def shadowed(
    layers: Sequence[str], manifests: Mapping[str, LayerManifest], python: str | None
) -> list[tuple[str, str]]:
    """(layer ARN, reason) for each distribution two layers of one function ship, and each
    layer replacing the runtime's boto3/botocore. Lambda extracts layers in order into /opt,
    a later one over an earlier one; a version's own site-packages comes before python/."""
    own_tree = f"python/lib/python{python}/site-packages"
    seen: dict[str, tuple[str, str, str]] = {}  # name -> (arn, version, tree)
    found = []
    for arn in layers:
        manifest = manifests.get(arn)
        if manifest is None:
            continue
        for key, dist in manifest.distributions().items():
            tree = dist.site_packages or "python"
            if python and tree.startswith("python/lib/") and tree != own_tree:
                continue  # another Python version's tree: this function never imports it
            if canonical(key) in {"boto3", "botocore"}:
                reason = f"ships {dist.name} {dist.version}, which replaces the runtime's copy"
                found.append((arn, reason))
            if key in seen:
                first_arn, first_version, first_tree = seen[key]
                winner = arn
                if first_tree == own_tree and tree != own_tree:
                    winner = first_arn  # the version's own tree comes first on sys.path
                reason = (
                    f"{dist.name} {first_version} in {first_arn} and {dist.version} in {arn}: "
                    f"{winner}'s copy is imported"
                )
                found.append((arn, reason))
            else:
                seen[key] = (arn, dist.version, tree)
    return found


def unsigned(
    layers: Sequence[str], signers: Mapping[str, str], config: CodeSigningConfig | None
) -> list[tuple[str, str]]:
    """(layer ARN, reason) for each layer that no profile of the function's code signing
    configuration signed: Lambda checks them when the function is next deployed."""
    if config is None:
        return []
    outcome = (
        "Enforce: the function's next deploy fails (CodeVerificationFailedException)"
        if config.enforce
        else "Warn: it deploys, and Lambda logs a signature validation error"
    )
    found = []
    for arn in layers:
        signer = signers.get(arn, "")
        if signer in config.allowed:
            continue
        what = f"signed by {signer}, which" if signer else "unsigned, and"
        found.append((arn, f"{what} {config.arn} does not allow; {outcome}"))
    return found


def problems_with(
    fn: FunctionVersion,
    layers: Sequence[str],
    declared: Mapping[str, LayerVersion],
    manifests: Mapping[str, LayerManifest],
    unzipped: Mapping[str, int],
    signing: tuple[CodeSigningConfig | None, Mapping[str, str]] = (None, {}),
) -> list[str]:
    """Why `layers` cannot be attached to `fn`: rollout refuses a change that has any.
    `signing`: the function's code signing configuration and each layer's signer; a layer
    it does not allow is refused only under Enforce (Warn deploys)."""
    config, signers = signing
    problems = [
        f"{arn}: {reason}"
        for arn, reason in unsigned(layers, signers, config)
        if config is not None and config.enforce
    ]
    for arn in layers:
        for reason in incompatible(fn, declared.get(arn), manifests.get(arn)):
            problems.append(f"{arn}: {reason}")
    if len(layers) > LAYERS_PER_FUNCTION:
        problems.append(f"{len(layers)} layers; Lambda allows {LAYERS_PER_FUNCTION}")
    known = sum(unzipped[arn] for arn in layers if arn in unzipped)
    if known > UNZIPPED_LIMIT:
        problems.append(
            f"the layers' known unzipped size is {known:,} bytes, over Lambda's "
            f"{UNZIPPED_LIMIT:,} for a function and its layers"
        )
    return problems


def findings(
    functions: Sequence[FunctionVersion],
    aliases: Mapping[tuple[str, str, str], tuple[str, ...]],
    declared: Mapping[str, LayerVersion],
    manifests: Mapping[str, LayerManifest],
    today: datetime.date,
    code_signing: Mapping[tuple[str, str, str], CodeSigningConfig] | None = None,
) -> list[Finding]:
    """Every attach-time finding for these function versions. `aliases`: (region,
    function, version) -> the aliases serving it; `code_signing`: (account, region,
    function) -> its code signing configuration."""
    table = lifecycles()  # the built-in dates, or LAYERKIT_RUNTIMES_FILE over them
    found = []
    for fn in functions:
        serving = aliases.get((fn.region, fn.name, fn.version), ())

        def finding(
            kind: Kind,
            layer: str,
            reason: str,
            fn: FunctionVersion = fn,
            serving: tuple[str, ...] = serving,
        ) -> Finding:
            return Finding(kind, fn.account, fn.region, fn.name, fn.version, serving, layer, reason)

        for arn in fn.layers:
            for reason in incompatible(fn, declared.get(arn), manifests.get(arn)):
                found.append(finding(Kind.incompatible, arn, reason))
            layer = declared.get(arn)
            stages = [stage_of(r, today, table) for r in layer.runtimes] if layer else []
            if layer and stages and all(stages):
                said = "; ".join(f"{r} {st}" for r, st in zip(layer.runtimes, stages, strict=True))
                reason = f"every runtime the layer declares is deprecated: {said}"
                found.append(finding(Kind.deprecated, arn, reason))
        stage = stage_of(fn.runtime, today, table)
        if stage is not None:
            reason = (
                f"{fn.runtime} was {stage}: move the function to a supported runtime, and "
                "its layers with it"
            )
            found.append(finding(Kind.deprecated, "", reason))
        for arn, reason in shadowed(fn.layers, manifests, python_of(fn.runtime)):
            found.append(finding(Kind.shadowed, arn, reason))
        if fn.version == "$LATEST":  # what the next deploy checks; versions are immutable
            config = (code_signing or {}).get((fn.account, fn.region, fn.name))
            for arn, reason in unsigned(fn.layers, fn.signers, config):
                found.append(finding(Kind.unsigned, arn, reason))
    return found
