"""No input makes layerkit print a traceback: every command against a table of broken
files and settings exits with the code of its kind, with one message that names the input
that is wrong (the file, key, value or region), so that a generic "error" cannot pass."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import layerkit

RECIPE = (
    '[layer]\nname = "ok"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
    '[python]\nrequirements = ["six"]\n'
)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    (root / "recipes").mkdir()
    (root / "recipes" / "folder.toml").mkdir()
    (root / "template.yaml").write_text("- arn:aws:lambda:eu-west-1:123456789012:layer:x:1\n")
    (root / "loop").symlink_to(root / "loop")
    (root / "recipes" / "empty.toml").write_bytes(b"")
    (root / "recipes" / "binary.toml").write_bytes(bytes(range(256)) * 4)
    (root / "recipes" / "utf16.toml").write_bytes(RECIPE.encode("utf-16"))
    (root / "recipes" / "garbage.toml").write_text(RECIPE.replace('"ok"', '"garbage"'))
    (root / "recipes" / "garbage.python3.12-x86_64.lock.txt").write_bytes(b"\x00\xffnot a lock")
    (root / "recipes" / "requirements.bin").write_bytes(bytes(range(256)))
    (root / "recipes" / "reqbin.toml").write_text(
        RECIPE.replace('"ok"', '"reqbin"').replace(
            'requirements = ["six"]', 'requirements-file = "requirements.bin"'
        )
    )
    (root / "recipes" / "reqdir.toml").write_text(
        RECIPE.replace('"ok"', '"reqdir"').replace(
            'requirements = ["six"]', 'requirements-file = "."'
        )
    )
    good = root / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("python/m.py", "X = 1\n" * 5000)
    (root / "truncated.zip").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (root / "notzip.zip").write_text("this is not a zip")
    (root / "folder.zip").mkdir()
    (root / "empty.zip").write_bytes(b"")
    (root / "registry-folder").mkdir()
    (root / "corrupt.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xa5" * 4000)
    with sqlite3.connect(root / "newer.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    # a recipe with no lock, so that locking it reads the pip configuration
    (root / "recipes" / "fresh.toml").write_text(RECIPE.replace('"ok"', '"fresh"'))
    # a valid layer ZIP, so that what fails in the region cases is the region
    (root / "recipes" / "s.json").write_text("{}\n")
    (root / "recipes" / "conf.toml").write_text(
        '[layer]\nname = "conf"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "s.json"\ntarget = "etc/s.json"\n'
    )
    layerkit("build", "conf", cwd=root)
    (root / "runtimes-string.toml").write_text('[python3.11]\ndeprecated = "2027-06-30"\n')
    (root / "runtimes-key.toml").write_text("[python3.11]\nretired = 2027-06-30\n")
    (root / "recipes" / "badsign.toml").write_text(
        RECIPE.replace('"ok"', '"badsign"') + '[publish]\nsigning-profile = "has space"\n'
    )
    (root / "pip-binary.conf").write_bytes(bytes(range(256)))
    (root / "pip-utf16.conf").write_bytes("[global]\nindex-url = x\n".encode("utf-16"))
    return root


RECIPE_CASES = ["folder", "empty", "binary", "utf16", "missing", "reqbin", "reqdir"]
ZIP_CASES = ["truncated.zip", "notzip.zip", "folder.zip", "empty.zip", "missing.zip"]
REGISTRY_CASES = ["registry-folder", "corrupt.sqlite", "newer.sqlite"]
NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_DEFAULT_REGION": ""}
# credentials that would sign a call, and no endpoint: any call would leave this machine
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1"}  # fmt: skip
NO_CREDENTIALS = "No AWS credentials were found"

# (id, arguments, environment, exit code, what the message must name)
CASES = [
    *[(f"{cmd}-recipe-{case}", [cmd, f"recipes/{case}.toml"], {}, 2, f"recipes/{case}.toml")
      for cmd in ("lock", "build", "verify", "publish") for case in RECIPE_CASES],
    *[(f"{cmd}-recipe-{case}-key", [cmd, f"recipes/{case}.toml"], {}, 2,
       "python.requirements-file") for cmd in ("lock", "build") for case in ("reqbin", "reqdir")],
    ("build-garbage-lock", ["build", "garbage", "--locked"], {}, 2,
     "recipes/garbage.python3.12-x86_64.lock.txt"),
    *[(f"{cmd}-{case}", [cmd, case], {}, 2, f"{case}: not a readable ZIP file")
      for cmd in ("inspect", "verify", "publish", "sbom") for case in ZIP_CASES],
    ("sbom-format", ["sbom", "notzip.zip", "--format", "yaml"], {}, 2, "'yaml'"),
    *[(f"{cmd[0]}-osv-db-{case}", [*cmd, "--osv-db", case], {}, 2, f"--osv-db: {case}")
      for cmd in (["build", "garbage", "--audit"], ["audit", "--vulnerabilities"])
      for case in ("registry-folder", "notzip.zip", "empty.zip", "missing.zip")],
    *[(f"{cmd[0]}-registry-{case}", [*cmd, "--registry", case], {}, 2, case)
      for cmd in (["ls"], ["show", "ok"], ["diff", "ok:1", "ok:2"])
      for case in REGISTRY_CASES],
    *[(f"pip-config-{name}", ["lock", "recipes/fresh.toml"], {"PIP_CONFIG_FILE": name}, 2, name)
      for name in ("pip-binary.conf", "pip-utf16.conf", "registry-folder")],
    ("audit-not-a-region", ["audit", "--region", "not a region"], FAKE_AWS, 2, "'not a region'"),
    ("publish-unknown-region", ["publish", "dist/conf.zip", "--region", "eu-mars-9"], FAKE_AWS,
     2, "eu-mars-9 is not a region where AWS offers lambda"),
    ("audit-no-credentials", ["audit", "--region", "eu-west-1"], NO_AWS, 2, NO_CREDENTIALS),
    ("rollout-no-credentials", ["rollout", "x", "--region", "eu-west-1"], NO_AWS, 2,
     NO_CREDENTIALS),
    ("prune-no-credentials", ["prune", "x", "--region", "eu-west-1"], NO_AWS, 2, NO_CREDENTIALS),
    ("sync-no-credentials", ["registry", "sync", "--region", "eu-west-1"], NO_AWS, 2,
     NO_CREDENTIALS),
    ("bump-missing-path", ["bump", "no/such/infra"], {}, 2, "no/such/infra does not exist"),
    ("bump-symlink-loop", ["bump", "loop"], {}, 2, "loop is a broken symbolic link, or a loop"),
    ("bump-no-credentials", ["bump", "template.yaml"], NO_AWS, 2, NO_CREDENTIALS),
    ("bump-to-not-a-number", ["bump", "template.yaml", "--to", "latest"], {}, 2, "'latest'"),
    ("bump-to-no-version", ["bump", "template.yaml", "--to", "0"], {}, 2, "'--to': 0"),
    *[(f"{cmd[0]}-runtimes-file-{case}", cmd, {"LAYERKIT_RUNTIMES_FILE": f"runtimes-{case}.toml"},
       2, named) for cmd in (["build", "conf"], ["audit", "--region", "eu-west-1"])
      for case, named in (("string", "python3.11.deprecated = '2027-06-30'"),
                          ("key", "python3.11.retired is not a lifecycle date"),
                          ("missing", "runtimes-missing.toml"))],
    ("recipe-signing-profile", ["lock", "recipes/badsign.toml"], {}, 2,
     "publish.signing-profile"),
    ("publish-signing-without-bucket", ["publish", "dist/conf.zip", "--region", "eu-west-1",
     "--signing-profile", "release"], FAKE_AWS, 2, "needs an S3 bucket"),
    ("report-unknown-layer", ["report", "nosuch", "-o", "r.html"], {}, 2,
     "nosuch is not in the registry"),
    ("report-a-folder", ["report", "recipes", "-o", "r.html"], {}, 2, "recipes is a folder"),
    ("catalog-onto-a-file", ["catalog", "-o", "good.zip"], {}, 2, "good.zip is a file"),
    ("publish-bad-signing-profile", ["publish", "dist/conf.zip", "--region", "eu-west-1",
     "--signing-profile", "bad name", "--s3-bucket", "b"], FAKE_AWS, 2,
     "'bad name' is not a Signer profile name"),
    ("report-not-a-zip", ["report", "notzip.zip", "-o", "r.html"], {}, 2,
     "notzip.zip: not a readable ZIP file"),
    ("report-unwritable", ["report", "dist/conf.zip", "-o", "registry-folder"], {}, 2,
     "Cannot write registry-folder"),
    ("catalog-registry-folder", ["catalog", "-o", "site", "--registry", "registry-folder"], {},
     2, "registry-folder"),
    ("audit-aggregator-and-organization", ["audit", "--config-aggregator", "org",
     "--organization"], FAKE_AWS, 2, "leave out --organization"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "code", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_message_naming_it_and_its_exit_code(
    bad: Path, args: list[str], env: dict[str, str], code: int, named: str
) -> None:
    result = layerkit(*args, cwd=bad, env=env, check=False)
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert result.returncode == code, message
    assert named in " ".join(message.split()), message  # rich may wrap a usage error
    assert len(message.splitlines()) <= 12, message  # a paragraph, not a dump


def test_a_full_disk_leaves_no_partial_zip(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs needs root: {mounted.stderr.decode().strip()}")
    try:
        (tmp_path / "recipes").mkdir()
        (tmp_path / "recipes" / "blob.bin").write_bytes(os.urandom(2 << 20))
        (tmp_path / "recipes" / "big.toml").write_text(
            '[layer]\nname = "big"\nruntimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
            '[[files]]\nsource = "blob.bin"\ntarget = "data/blob.bin"\n'
        )
        result = layerkit("build", "big", cwd=tmp_path, check=False,
                          env={"LAYERKIT_CACHE_DIR": str(disk / "cache")})  # fmt: skip
        assert result.returncode == 3
        assert "Traceback" not in result.stderr and "Cannot write" in result.stderr
        written = [p.name for p in disk.rglob("*") if p.is_file()]
        assert [n for n in written if n.startswith(".") or n.endswith(".zip")] == []
        assert not (tmp_path / "dist" / "big.zip").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.network  # downloads from PyPI
def test_damaged_cache_entries_are_dropped_and_made_again(tmp_path: Path) -> None:
    """Truncated entries in the artifact, bytecode and SBOM caches: the next build makes the
    very same ZIP again, instead of failing or shipping a damaged one."""
    import json

    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "ok.toml").write_text(RECIPE)
    env = {"LAYERKIT_CACHE_DIR": str(tmp_path / "cache")}
    [first] = json.loads(layerkit("build", "ok", "--json", cwd=tmp_path, env=env).stdout)
    damaged = [
        *(tmp_path / "cache" / "artifacts").glob("*.zip"),
        *(tmp_path / "cache" / "bytecode").rglob("*.zip"),
        *(tmp_path / "cache" / "sbom").glob("*.cdx.json"),
    ]
    assert len(damaged) >= 3
    for path in damaged:
        path.write_bytes(path.read_bytes()[:100])
    (tmp_path / "dist" / "ok.zip").unlink()
    result = layerkit("build", "ok", "--json", cwd=tmp_path, env=env)
    [again] = json.loads(result.stdout)
    assert again["status"] == "built"
    assert again["sha256"] == first["sha256"]
    assert "damaged" in result.stderr
