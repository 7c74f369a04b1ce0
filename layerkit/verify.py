"""`layerkit verify`: import every module of a layer where Lambda will load it.

The layer is extracted at /opt inside the target's runtime image (or, with --native, for
an interpreter on this host that is the target's exact Python and architecture), and
every top-level module of every distribution in its manifest is imported with Lambda's
path order: the layer's site-packages, /opt/python, then the runtime's /var/runtime.
"""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit import manifest
from layerkit.container import DOCKER_ARCHITECTURES, ContainerEngine, Mount, Run
from layerkit.errors import UserError
from layerkit.inspection import check_paths
from layerkit.runner import run
from layerkit.targets import ARCHITECTURES, RUNTIMES

RUNTIME_IMAGE = "public.ecr.aws/lambda/python:{python}-{arch}"

IMPORT_ALL = """
import importlib, importlib.metadata, json, sys
opt, target = sys.argv[1], sys.argv[2]
layer = json.load(open(sys.argv[3]))
site = layer["targets"][target]["site_packages"]
sys.path[:0] = [f"{opt}/{site}", f"{opt}/python", "/var/runtime"]
results = {}
for dist in layer["targets"][target]["distributions"]:
    try:
        importlib.metadata.version(dist["name"])
    except Exception as exc:
        results[dist["name"] + " (metadata)"] = repr(exc)
    for module in dist["top_level"]:
        try:
            importlib.import_module(module)
            results[module] = "ok"
        except BaseException as exc:
            results[module] = f"{type(exc).__name__}: {exc}"
print("LAYERKIT-RESULTS " + json.dumps(results))
"""


@dataclass(frozen=True)
class TargetResult:
    target: str
    where: str  # the image, or the host interpreter
    modules: dict[str, str]  # module -> "ok" or the error

    @property
    def ok(self) -> bool:
        return all(outcome == "ok" for outcome in self.modules.values())

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "where": self.where, "ok": self.ok, "modules": self.modules}


def _parse(output: str) -> dict[str, str]:
    for line in output.splitlines():
        if line.startswith("LAYERKIT-RESULTS "):
            results: dict[str, str] = json.loads(line.removeprefix("LAYERKIT-RESULTS "))
            return results
    raise UserError(f"The import check printed no results:\n{output[-2000:]}")


def verify(
    zip_path: Path,
    *,
    engine: ContainerEngine | None,
    image: str | None = None,
    network: str | None = None,
    native: bool = False,
) -> list[TargetResult]:
    """Import-check every target of the layer; engine is None only with native."""
    with zipfile.ZipFile(zip_path) as layer:
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
            layer_manifest = f"layerkit/{found['layer']}.json"
            results = []
            for target_id in found["targets"]:
                runtime_name, arch = target_id.rsplit("-", 1)
                python = RUNTIMES[runtime_name].python_version
                if native:
                    results.append(_native(opt, target_id, python, arch, layer_manifest))
                    continue
                assert engine is not None
                name = (image or RUNTIME_IMAGE).format(
                    runtime=runtime_name, python=python, arch=arch
                )
                script = (
                    f"python3 -I -S -c {shlex.quote(IMPORT_ALL)} /opt {target_id} "
                    f"/opt/{layer_manifest}"
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
                results.append(TargetResult(target_id, name, _parse(output)))
    return results


def _native(opt: Path, target_id: str, python: str, arch: str, layer_manifest: str) -> TargetResult:
    if platform.machine() != ARCHITECTURES[arch]:
        raise UserError(
            f"{target_id} cannot be verified natively on this {platform.machine()} host: "
            "verify it in the runtime image instead (without --native)."
        )
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise UserError(
            f"{target_id} needs python{python} on PATH to be verified natively; install it or "
            "verify in the runtime image (without --native)."
        )
    output = run(
        [interpreter, "-I", "-S", "-c", IMPORT_ALL, str(opt), target_id, str(opt / layer_manifest)]
    ).stdout
    return TargetResult(target_id, interpreter, _parse(output))
