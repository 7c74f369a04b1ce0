"""bump's scan against `git grep`: finding the layer ARNs in a large repository.

A generated git repository of 10,000 files (about 200 MB: source, templates, JSON, lock
files) holds a few hundred layer version ARNs written as each IaC tool writes them. Timed
side by side, alternating run by run, whole processes, medians:

- `layerkit bump --list`: every file listed by git, read, and each reference found and
  understood (placeholders, expressions), without asking any account;
- `git grep -E 'arn:aws[a-z-]*:lambda:'`: the floor the issue set, git's own search;
- `git grep -F ':layer:'`: git's fastest search (a fixed string), for an honest bound.

Run from the repository root: `python bench/bump_speed.py [--runs 7]`. It writes
bench/out/bump_speed.json and prints the Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FILES = 10_000
SIZE = 200 * 1024 * 1024

REFERENCES = [
    "      - !Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:"
    "AWSLambdaPowertoolsPythonV3-python312-x86_64:{v}\n",
    '  layers = ["arn:aws:lambda:${var.region}:${data.aws_caller_identity.current.account_id}'
    ':layer:deps:{v}"]\n',
    "      - arn:aws:lambda:${aws:region}:123456789012:layer:deps:{v}\n",
    '    f"arn:aws:lambda:{self.region}:123456789012:layer:deps:{v}",\n',
    "  `arn:aws:lambda:${cdk.Stack.of(this).region}:123456789012:layer:deps:{v}`,\n",
    "DEPS_LAYER=arn:aws:lambda:eu-west-1:123456789012:layer:deps:{v}\n",
]
SUFFIXES = [".py", ".ts", ".yaml", ".json", ".tf", ".md", ".txt", ".js"]


def make_repo(path: Path) -> int:
    """The repository, made once (same seed, same bytes); returns its reference count."""
    marker = path.with_name(path.name + ".references")
    if marker.exists():
        return int(marker.read_text())
    rng = random.Random(17)
    words = [f"{w}{i}" for i in range(400) for w in ("alpha", "beta", "gamma", "delta")]
    average = SIZE // FILES
    references = 0
    for index in range(FILES):
        folder = path / f"pkg{index % 97}" / f"mod{index % 13}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        size = 0
        target = rng.randint(average // 4, average * 7 // 4)
        while size < target:
            line = " ".join(rng.choices(words, k=12)) + "\n"
            lines.append(line)
            size += len(line)
        if index % 33 == 0:  # about 300 files hold one reference each
            lines.insert(
                rng.randrange(len(lines)),
                rng.choice(REFERENCES).replace("{v}", str(rng.randint(1, 9))),
            )
            references += 1
        (folder / f"f{index}{SUFFIXES[index % len(SUFFIXES)]}").write_text("".join(lines))
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "tree"]):
        subprocess.run(command, cwd=path, env=env, check=True)
    marker.write_text(str(references))
    return references


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # git grep exits 1 when nothing matches
        raise SystemExit(f"{command} failed: {done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    repo = OUT / "bump-tree"
    repo.mkdir(parents=True, exist_ok=True)
    references = make_repo(repo)
    size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    # layerkit as installed: its bytecode compiled (PYTHONDONTWRITEBYTECODE may be set)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "layerkit")], check=True)
    layerkit = [sys.executable, "-m", "layerkit", "bump", "--list", "--json"]
    greps = {
        "git grep -E": ["git", "grep", "-E", "arn:aws[a-z-]*:lambda:"],
        "git grep -F": ["git", "grep", "-F", ":layer:"],
    }
    times: dict[str, list[float]] = {"layerkit": [], **{name: [] for name in greps}}
    timed(layerkit, repo), [timed(g, repo) for g in greps.values()]  # warm the page cache
    for _ in range(args.runs):
        elapsed, out = timed(layerkit, repo)
        times["layerkit"].append(elapsed)
        found = json.loads(out)
        for name, command in greps.items():
            elapsed, grepped = timed(command, repo)
            times[name].append(elapsed)
            assert len(grepped.splitlines()) == references, name
    assert len(found["references"]) == references, (len(found["references"]), references)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        name: statistics.median(a / b for a, b in zip(times["layerkit"], times[name], strict=True))
        for name in greps
    }
    result = {"files": found["files"], "bytes": size, "references": references,
              "runs": args.runs, "times": times, "medians": medians, "ratios": ratios}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bump_speed.json").write_text(json.dumps(result, indent=2))
    print(f"{found['files']:,} files, {size / 2**20:.0f} MiB, {references} references; "
          f"{args.runs} runs, alternating")  # fmt: skip
    print("| command | median (s) |")
    print("|---|---|")
    print(f"| `layerkit bump --list` | {medians['layerkit']:.3f} |")
    print(f"| `git grep -E 'arn:aws[a-z-]*:lambda:'` | {medians['git grep -E']:.3f} |")
    print(f"| `git grep -F ':layer:'` | {medians['git grep -F']:.3f} |")
    for name, ratio in ratios.items():
        print(f"- layerkit / {name}, pair by pair: {ratio:.2f}x (median)")


if __name__ == "__main__":
    main()
