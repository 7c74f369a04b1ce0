"""The pages, in a real browser: Debian's Chromium driven by Playwright (its own browser
download is not reachable here), each page loaded from file://. No console error and no
network request on any page; the treemap's boxes read back from the page; sorting and
filtering change what is shown; what a layer or an account says is text, never run. A
screenshot of each page is written under the test's temporary folder."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerkit import quota
from layerkit.cli.pages import HEIGHT, WIDTH
from layerkit.layer.breakdown import OTHER, breakdown
from tests.conftest import layerkit, write_recipe
from tests.fleet import client, execution_role, zipped

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LAYERKIT_TEST_CHROMIUM", "/usr/bin/chromium")
INJECTED = '<script>window.pwned = 1</script><img src="x.png" onerror="window.pwned = 2">'


class Browser:
    def __init__(self, browser: Any) -> None:
        self.browser = browser

    def open(self, path: Path, shot: Path) -> Any:
        """The page at `path`, with what it asked for and complained about, and a
        screenshot of it."""
        page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        page.errors, page.requests = [], []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(shot), full_page=True)
        return page

    @staticmethod
    def clean(page: Any, path: Path) -> None:
        assert page.errors == []
        assert page.requests == [path.resolve().as_uri()]  # the page itself, nothing else


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )  # fmt: skip
        yield Browser(launched)
        launched.close()


def shipped(project: Path) -> None:
    shutil.copytree(ROOT / "recipes", project / "recipes", dirs_exist_ok=True)


@pytest.mark.network
def test_the_report_of_the_data_layer_draws_every_distribution_to_scale(
    project: Path, browser: Browser, tmp_path: Path
) -> None:
    shipped(project)
    page_path = project / "data.html"
    layerkit("report", "data", "-o", str(page_path), "--sbom", cwd=project)
    page = browser.open(page_path, tmp_path / "report.png")
    browser.clean(page, page_path)
    zips = sorted((project / "dist").glob("data-*.zip"))
    assert len(zips) == 2 and page.locator("section.layer").count() == 2
    for n in range(len(zips)):
        section = page.locator("section.layer").nth(n)
        title = section.locator("h1").inner_text()
        found = breakdown(project / "dist" / f"{title}.zip")
        boxes = section.locator("svg.treemap g.box").evaluate_all(
            "gs => gs.map(g => { const r = g.querySelector('rect').getBBox();"
            " return [g.dataset.name, Number(g.dataset.bytes), r.width * r.height,"
            " g.classList.contains('dist')]; })"
        )
        dists = {name: size for name, size, _, is_dist in boxes if is_dist}
        assert dists == {p.name: p.size for p in found.parts if p.name != OTHER}
        scale = WIDTH * HEIGHT / quota.UNZIPPED_LIMIT  # the drawing is the quota
        for name, size, area, _ in boxes:
            assert area == pytest.approx(size * scale, rel=0.01), name
        assert sum(a for _, _, a, _ in boxes) == pytest.approx(WIDTH * HEIGHT, rel=0.001)
        rows = section.locator("table.distributions tbody tr")
        assert rows.count() == len(dists)
    first = page.locator("section.layer").first
    names = first.locator("table.distributions tbody tr td:first-child")
    by_size = names.all_inner_texts()
    assert by_size[:2] == ["numpy", "pandas"]  # largest first
    first.locator("table.distributions th", has_text="distribution").click()
    descending = names.all_inner_texts()
    first.locator("table.distributions th", has_text="distribution").click()
    ascending = names.all_inner_texts()
    assert ascending == sorted(by_size, key=str.lower)
    assert descending == list(reversed(ascending)) and ascending != by_size
    assert "sbom" in page.content().lower()


def test_what_a_layer_says_is_shown_never_run(
    project: Path, browser: Browser, tmp_path: Path
) -> None:
    (project / "recipes" / "s.json").write_text("{}")
    write_recipe(
        project, "evil",
        f'[layer]\nname = "evil"\ndescription = {json.dumps(INJECTED)}\n'
        'runtimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
        '[[files]]\nsource = "s.json"\ntarget = "etc/s.json"\n',
    )  # fmt: skip
    layerkit("lock", "evil", cwd=project)
    page_path = project / "evil.html"
    layerkit("report", "evil", "-o", str(page_path), cwd=project)
    page = browser.open(page_path, tmp_path / "injected.png")
    browser.clean(page, page_path)  # the <img> asked for nothing: it is not an element
    assert page.evaluate("window.pwned") is None
    assert page.locator("p.description").inner_text() == INJECTED
    assert page.locator("section.layer script, section.layer img").count() == 0


@pytest.fixture
def fleet(aws: dict[str, str]) -> dict[str, str]:
    """Functions in two regions on old, current and deprecated versions."""
    role = execution_role(aws)
    for region in ("eu-west-1", "us-east-1"):
        lam = client(aws, "lambda", region)
        arns = [
            lam.publish_layer_version(
                LayerName=name, Content={"ZipFile": zipped(f"{name}{n}.py")},
                CompatibleRuntimes=["python3.12"],
            )["LayerVersionArn"]
            for name in ("deps", "tools") for n in range(3)
        ]  # fmt: skip
        for fn, runtime, layers in (
            ("api", "python3.12", [arns[0], arns[3]]),
            ("worker", "python3.12", [arns[2]]),
            ("legacy", "python3.9", [arns[1]]),
            ("cron", "python3.12", [arns[5]]),
        ):
            lam.create_function(
                FunctionName=f"{fn}-{region}", Runtime=runtime, Role=role, Handler="h.handle",
                Code={"ZipFile": zipped()}, Layers=layers,
            )  # fmt: skip
    return aws


def test_the_audit_page_filters_and_sorts_the_fleet(
    project: Path, fleet: dict[str, str], browser: Browser, tmp_path: Path
) -> None:
    page_path = project / "audit.html"
    layerkit("audit", "--region", "eu-west-1", "--region", "us-east-1", "--html",
             str(page_path), cwd=project, env=fleet)  # fmt: skip
    page = browser.open(page_path, tmp_path / "audit.png")
    browser.clean(page, page_path)
    rows = page.locator("table.uses tbody tr")
    assert rows.count() == 10  # 5 uses in each region

    def shown() -> list[dict[str, str]]:
        found: list[dict[str, str]] = rows.evaluate_all(
            "rs => rs.filter(r => !r.hidden).map(r => ({region: r.dataset.region,"
            " layer: r.dataset.layer, marks: r.dataset.marks.trim()}))"
        )
        return found

    page.select_option("#f-region", "us-east-1")
    assert len(shown()) == 5 and {r["region"] for r in shown()} == {"us-east-1"}
    page.select_option("#f-mark", "outdated")
    outdated = shown()
    assert len(outdated) == 3  # api's two layers, legacy's deps:2
    assert all("outdated" in r["marks"].split() for r in outdated)
    page.select_option("#f-mark", "deprecated")
    assert [r["layer"] for r in shown()] == ["deps"]  # legacy, on python3.9
    page.select_option("#f-region", "")
    page.select_option("#f-mark", "")
    assert len(shown()) == 10
    page.screenshot(path=str(tmp_path / "audit-filtered.png"), full_page=True)
    bars = page.locator("svg.chart g.bar").evaluate_all(
        "gs => gs.map(g => [g.dataset.layer, Number(g.dataset.version), Number(g.dataset.uses)])"
    )
    assert sorted(bars) == [["deps", 1, 2], ["deps", 2, 2], ["deps", 3, 2],
                            ["tools", 1, 2], ["tools", 3, 2]]  # fmt: skip
    versions = page.locator("table.uses tbody tr td:nth-child(2)")
    page.locator("table.uses th", has_text="version").click()
    numbers = [int(v) for v in versions.all_inner_texts()]
    assert numbers == sorted(numbers, reverse=True)
    page.locator("table.uses th", has_text="version").click()
    assert [int(v) for v in versions.all_inner_texts()] == sorted(numbers)


def test_the_catalog_gives_every_latest_arn_and_a_page_per_version(
    project: Path, aws: dict[str, str], browser: Browser, tmp_path: Path
) -> None:
    for layer in ("conf", "flags"):
        for n in range(3):
            (project / "recipes" / f"{layer}.json").write_text(json.dumps({"n": n}))
            description = INJECTED if layer == "flags" else "shared settings"
            write_recipe(
                project, layer,
                f'[layer]\nname = "{layer}"\ndescription = {json.dumps(description)}\n'
                'runtimes = ["python3.12"]\narchitectures = ["x86_64"]\n'
                f'[[files]]\nsource = "{layer}.json"\ntarget = "etc/{layer}.json"\n'
                '[publish]\nregions = ["eu-west-1", "us-east-1"]\n',
            )  # fmt: skip
            layerkit("lock", layer, cwd=project)
            layerkit("publish", layer, cwd=project, env=aws)
    site = project / "site"
    layerkit("catalog", "-o", str(site), cwd=project, env=aws)
    index = site / "index.html"
    page = browser.open(index, tmp_path / "catalog.png")
    browser.clean(page, index)
    latest = page.locator("table.latest td.arn").all_inner_texts()
    assert sorted(latest) == sorted(
        f"arn:aws:lambda:{r}:123456789012:layer:{layer}:3"
        for layer in ("conf", "flags") for r in ("eu-west-1", "us-east-1")
    )  # fmt: skip
    assert page.evaluate("window.pwned") is None
    assert INJECTED in page.locator("section#flags p.description").inner_text()
    links = page.locator("section#conf a").evaluate_all("as => as.map(a => a.href)")
    assert len(links) == 3
    newest = Path(links[0].removeprefix("file://"))
    version = browser.open(newest, tmp_path / "version.png")
    browser.clean(version, newest)
    assert version.locator("ul.changes li").count() == 0  # only a data file changed
    assert "conf:3" in version.content()
    from_registry = project / "conf.html"
    layerkit("report", "conf:3", "-o", str(from_registry), cwd=project, env=aws)
    report = browser.open(from_registry, tmp_path / "report-from-registry.png")
    browser.clean(report, from_registry)
    assert report.locator("h1").inner_text() == "conf"
    assert "arn:aws:lambda:" in report.locator("section.layer .muted").first.inner_text()
    sbom = json.loads(newest.with_suffix(".cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    again = project / "again"
    layerkit("catalog", "-o", str(again), cwd=project, env=aws)
    compared = filecmp.dircmp(site, again)
    assert not compared.diff_files and not compared.left_only and not compared.right_only
    assert all(
        (site / p.relative_to(again)).read_bytes() == p.read_bytes()
        for p in again.rglob("*") if p.is_file()
    )  # fmt: skip
