"""`layerkit verify`: import every module of a layer where Lambda will load it.

The layer is extracted at /opt inside the target's runtime image (or, with --native, for
an interpreter on this host that is the target's exact Python and architecture), and
every top-level module of every distribution in its manifest is imported with Lambda's
path order: the layer's site-packages, /opt/python, then the runtime's /var/runtime.

Two things are told apart from a failure, in the verifying interpreter itself: a module
that only needs a distribution its wheel requires under an extra ("needs extra"), and,
for a layer that ships bytecode, whether any of its sources was compiled on import
anyway (then the bytecode is not used where the layer runs, and verify fails).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit import settings
from layerkit.builder.container import DOCKER_ARCHITECTURES, ContainerEngine, Mount, Run
from layerkit.builder.interpreters import find_interpreter
from layerkit.errors import UserError
from layerkit.files import open_zip
from layerkit.layer import manifest
from layerkit.layer.inspection import check_paths
from layerkit.runner import run
from layerkit.targets import ARCHITECTURES, RUNTIMES, split_id

RUNTIME_IMAGE = "public.ecr.aws/lambda/python:{python}-{arch}"

# Runs in a fresh interpreter: imports the modules named in argv[1] (comma-separated) with
# argv[2:] first on sys.path, and prints each outcome, the time they took together, and
# every source file compiled meanwhile: a source is compiled only when no usable bytecode
# was found for it (none shipped, a wrong magic number, a path it was not made for).
IMPORT = """
import importlib, importlib.machinery, json, sys, time
sys.path[:0] = sys.argv[2:]
compiled = []
compile_source = importlib.machinery.SourceFileLoader.source_to_code
def recording(self, data, path, *args, **kwargs):
    compiled.append(path)
    return compile_source(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = recording
outcomes = {}
start = time.perf_counter()
for module in sys.argv[1].split(","):
    try:
        importlib.import_module(module)
        outcomes[module] = "ok"
    except BaseException as exc:
        outcomes[module] = f"{type(exc).__name__}: {exc}"
print(json.dumps([outcomes, time.perf_counter() - start, compiled]))
"""

# Each module alone, in a fresh interpreter: its cold import, as a function that imports
# only it pays it (with whatever it imports in turn); then all of them in one fresh
# interpreter: the total. -B everywhere: /opt is read-only on Lambda, so nothing may
# compile into it and make a later import look fast. Then the importlib.metadata check.
IMPORT_ALL = """
import importlib.metadata, json, subprocess, sys
opt, target, one = sys.argv[1], sys.argv[2], sys.argv[4]
layer = json.load(open(sys.argv[3]))
site = layer["targets"][target]["site_packages"]
path = [f"{opt}/{site}", f"{opt}/python", "/var/runtime"]
dists = layer["targets"][target]["distributions"]
modules = [module for dist in dists for module in dist["top_level"]]

def cold(names):
    child = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", one, ",".join(names), *path],
        capture_output=True, text=True,
    )
    try:
        return json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        died = f"the interpreter died (exit {child.returncode}): {child.stderr[-300:]}"
        return {name: died for name in names}, None, []

results, seconds, compiled = {}, {}, set()
for module in modules:
    outcomes, took, sources = cold([module])
    results.update(outcomes)
    compiled.update(sources)
    if took is not None:
        seconds[module] = took
total = cold(modules)[1] if modules else 0.0
sys.path[:0] = path
requires = {}
for dist in dists:
    try:
        importlib.metadata.version(dist["name"])
        requires[dist["name"]] = importlib.metadata.requires(dist["name"]) or []
    except Exception as exc:
        results[dist["name"] + " (metadata)"] = repr(exc)
own = sorted(p[len(opt) + 1:] for p in compiled if p.startswith(opt + "/"))
print("LAYERKIT-RESULTS " + json.dumps({"modules": results, "seconds": seconds, "total": total,
                                        "compiled": own, "requires": requires}))
"""


NEEDS_EXTRA = "needs extra"  # an outcome that is not a failure: see needs_extra


@dataclass(frozen=True)
class TargetResult:
    zip: Path
    target: str
    where: str  # the image, or the host interpreter
    modules: dict[str, str]  # module -> "ok", "needs extra …", or the error
    seconds: dict[str, float]  # module -> its cold import, alone in a fresh interpreter
    total_seconds: float | None  # every module, one after the other in a fresh interpreter
    bytecode: str | None = None  # the cache tag of the bytecode the layer ships, if any
    compiled: tuple[str, ...] = ()  # the layer's sources compiled while importing (under /opt)

    @property
    def failed(self) -> dict[str, str]:
        return {
            module: outcome
            for module, outcome in self.modules.items()
            if outcome != "ok" and not outcome.startswith(NEEDS_EXTRA)
        }

    @property
    def bytecode_unused(self) -> bool:
        """The layer ships bytecode for this target, and its sources were compiled anyway."""
        return self.bytecode is not None and bool(self.compiled)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.bytecode_unused

    def slowest(self, count: int = 5) -> list[tuple[str, float]]:
        return sorted(self.seconds.items(), key=lambda item: -item[1])[:count]


def needs_extra(outcome: str, requires: dict[str, list[str]]) -> str | None:
    """ "needs extra DIST[EXTRA] (REQUIREMENT)" when an import failed only because a
    distribution missing from the layer is required under an extra: a wheel may ship a
    top-level module for an optional integration, which works once its extra is installed.
    requires: each distribution of the layer's Requires-Dist."""
    import re

    from packaging.requirements import InvalidRequirement, Requirement

    from layerkit.names import canonical

    missing = re.match(r"ModuleNotFoundError: No module named '([^'.]+)", outcome)
    if missing is None:
        return None
    wanted = canonical(missing.group(1))
    present = {canonical(name) for name in requires}
    if wanted in present:
        return None
    for dist, lines in sorted(requires.items()):
        extras: list[str] = []
        needed = ""
        for line in lines:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if canonical(requirement.name) != wanted:
                continue
            if marker is None or marker.evaluate({"extra": ""}):
                return None  # required without an extra: the layer is missing it
            extras += re.findall(r'extra == "([^"]+)"', str(marker))
            needed = needed or f"{requirement.name}{requirement.specifier}"
        if extras:
            # the extra named after what it brings first, then the others (`all`…)
            extras.sort(key=lambda extra: (canonical(extra) != wanted, extra))
            others = "".join(f" or [{extra}]" for extra in extras[1:])
            return f"{NEEDS_EXTRA} {dist}[{extras[0]}]{others}: {needed}"
    return None


def _result(
    zip_path: Path, target: str, where: str, output: str, bytecode: str | None
) -> TargetResult:
    found = _parse(output)
    requires = found.get("requires", {})
    modules = {
        module: outcome if outcome == "ok" else needs_extra(outcome, requires) or outcome
        for module, outcome in found["modules"].items()
    }
    return TargetResult(
        zip_path, target, where, modules, found["seconds"], found["total"], bytecode,
        tuple(found.get("compiled", ())),
    )  # fmt: skip


def _parse(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("LAYERKIT-RESULTS "):
            results: dict[str, Any] = json.loads(line.removeprefix("LAYERKIT-RESULTS "))
            return results
    raise UserError(f"The import check printed no results:\n{output[-2000:]}")


def verify(
    zip_path: Path,
    *,
    engine: ContainerEngine | None,
    image: str | None = None,
    network: str | None = None,
    native: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[TargetResult]:
    """Import-check every target of the layer; engine is None only with native, which
    finds the target's Python as the build does, from env (default: the process's)."""
    env = os.environ if env is None else env
    with open_zip(zip_path) as layer:
        check_paths(layer.namelist(), zip_path)
        found = manifest.read_from(layer)
        if found is None:
            raise UserError(
                f"{zip_path} has no layerkit manifest (/opt/layerkit/NAME.json), so the "
                "modules to import are unknown. Build it with `layerkit build`."
            )
        with tempfile.TemporaryDirectory(prefix="layerkit-verify-") as tmp:
            opt = Path(tmp) / "opt"
            layer.extractall(opt)
            opt.chmod(0o755)
            layer_manifest = manifest.path_for(found.layer)
            results = []
            for target_id in found.targets:
                runtime_name, arch = split_id(target_id)
                python = RUNTIMES[runtime_name].python_version
                bytecode = found.targets[target_id].bytecode
                if native:
                    results.append(
                        _native(
                            zip_path, opt, target_id, python, arch, layer_manifest, env, bytecode
                        )
                    )
                    continue
                assert engine is not None
                name = (image or RUNTIME_IMAGE).format(
                    runtime=runtime_name, python=python, arch=arch
                )
                script = (
                    f"python3 -I -S -B -c {shlex.quote(IMPORT_ALL)} /opt {target_id} "
                    f"/opt/{layer_manifest} {shlex.quote(IMPORT)}"
                )
                output = engine.run(
                    Run(
                        image=name,
                        script=script,
                        mounts=(Mount(opt, "/opt", read_only=True),),
                        platform=f"linux/{DOCKER_ARCHITECTURES[arch]}",
                        network=network,
                        what="the import check",
                    )
                )
                results.append(_result(zip_path, target_id, name, output, bytecode))
    return results


def _native(
    zip_path: Path,
    opt: Path,
    target_id: str,
    python: str,
    arch: str,
    layer_manifest: str,
    env: Mapping[str, str],
    bytecode: str | None,
) -> TargetResult:
    if platform.machine() != ARCHITECTURES[arch]:
        raise UserError(
            f"{target_id} cannot be verified natively on this {platform.machine()} host: "
            "verify it in the runtime image instead (without --native)."
        )
    from uv import find_uv_bin

    found = find_interpreter(python, env, settings.resolve(settings.CACHE_DIR, env), find_uv_bin)
    if found is None:
        raise UserError(
            f"{target_id} needs Python {python} on this machine to be verified natively (on "
            f"PATH, in pyenv, or `uv python install {python}`); install it or verify in the "
            "runtime image (without --native)."
        )
    output = run(
        [str(found.path), "-I", "-S", "-B", "-c", IMPORT_ALL, str(opt), target_id,
         str(opt / layer_manifest), IMPORT]
    ).stdout  # fmt: skip
    return _result(zip_path, target_id, str(found.path), output, bytecode)


def verify_all(
    zips: list[Path],
    *,
    image: str | None,
    network: str | None,
    native: bool,
    env: Mapping[str, str],
) -> list[TargetResult]:
    """`layerkit verify`: each target of each ZIP."""
    from layerkit.builder.container import DockerEngine

    engine = None if native else DockerEngine.connect(env)
    return [
        result
        for zip_path in zips
        for result in verify(
            zip_path, engine=engine, image=image, network=network, native=native, env=env
        )
    ]
