"""The built book in a real browser: headless Chromium, driven by Selenium, against the
HTML served on localhost. Every page loads without console errors, figures are present
and non-empty, math is typeset by the vendored MathJax, internal links resolve; a chapter
opens with its verdicts and reaches its first figure within two screens, no table runs
past its column, and the data behind every figure can be downloaded."""
import functools
import http.server
import os
import shutil
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
    "(.ci/run installs them)")]
# A book already built (``make book``, or a re-plot at PROFILE=workstation) is checked in
# place of the smoke build when its HTML folder is named here; its screenshots then go to
# a folder of their own, named by the second variable (e.g. "ci", "workstation").
BUILT = os.environ.get("BOOK_TEST_HTML")
ARTIFACTS = ROOT / "_build" / "test-artifacts" / os.environ.get("BOOK_TEST_LABEL", "")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # a line per request would bury the test report
        pass


@pytest.fixture(scope="module")
def built_html(request) -> Path:
    if BUILT:
        return Path(BUILT).resolve()
    return request.getfixturevalue("smoke_book")[1]


@pytest.fixture(scope="module")
def served(built_html):
    html = built_html
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,2000",
                 "--disable-dev-shm-usage"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _pages(html: Path) -> list[str]:
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if not p.name.startswith(("genindex", "search")) and "_static" not in p.parts
                  and p.name != "index.html")


def _wait(driver, condition: str, timeout: float = 20.0) -> bool:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(f"return {condition}"))
        return True
    except Exception:
        return False


def test_every_page_loads_with_figures_math_and_no_console_errors(served, browser):
    base, html = served
    pages = _pages(html)
    assert any(p.startswith("notebooks/") for p in pages) and "intro.html" in pages
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for page in pages:
        browser.get_log("browser")  # clear
        browser.get(f"{base}/{page}")
        assert _wait(browser, "document.readyState === 'complete'")
        source = (html / page).read_text()
        if "math notranslate" in source or "\\(" in source:
            if not _wait(browser, "document.querySelectorAll('mjx-container').length > 0"):
                problems.append(f"{page}: math was not typeset")
            if browser.execute_script("return document.querySelectorAll('mjx-merror').length"):
                problems.append(f"{page}: MathJax reported a TeX error")
        imgs = browser.execute_script(
            "return Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])")
        for src, complete, width in imgs:
            if not (complete and width > 0):
                problems.append(f"{page}: image {src} is missing or empty")
        if page.startswith("notebooks/") and "reproducibility" not in page:
            if not imgs:
                problems.append(f"{page}: a chapter without figures")
        for entry in browser.get_log("browser"):
            if entry["level"] == "SEVERE":
                problems.append(f"{page}: console error: {entry['message'][:300]}")
        if page in ("intro.html", "notebooks/sgd_vs_gd.html"):
            browser.save_screenshot(str(ARTIFACTS / (page.replace("/", "_") + ".png")))
    assert not problems, "\n".join(problems)


def test_chapters_have_launch_buttons_a_rerun_box_and_no_nan(served, browser):
    """Every chapter page: Colab and Binder launch links to the source notebook, the
    repository, issues and download buttons, the rerun box; no page reads "nan%"."""
    base, html = served
    problems = []
    for page in _pages(html):
        browser.get(f"{base}/{page}")
        assert _wait(browser, "document.readyState === 'complete'")
        text = browser.execute_script("return document.body.innerText")
        if "nan%" in text:
            problems.append(f"{page}: the text contains 'nan%'")
        if not page.startswith("notebooks/"):
            continue
        hrefs = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        name = page.removeprefix("notebooks/").removesuffix(".html")
        for host in ("colab.research.google.com", "mybinder.org"):
            if not any(host in h and f"notebooks/{name}.ipynb" in h for h in hrefs):
                problems.append(f"{page}: no {host} launch button for notebooks/{name}.ipynb")
        if not any(h.endswith("/issues") or "/issues/new" in h for h in hrefs):
            problems.append(f"{page}: no issues button")
        if not browser.execute_script(
                "return !!document.querySelector('.btn-download-source-button, "
                "a[download], button[title*=\"Download\"], .dropdown-download-buttons')"):
            problems.append(f"{page}: no download button")
        if "Rerun this chapter" not in browser.page_source:
            problems.append(f"{page}: no rerun box")
    assert not problems, "\n".join(problems)


def test_execution_report_page(served, browser):
    base, html = served
    browser.get(f"{base}/execution.html")
    assert _wait(browser, "document.readyState === 'complete'")
    text = browser.execute_script("return document.body.innerText")
    assert "Execution report" in text
    rows = browser.execute_script("return document.querySelectorAll('table tbody tr').length")
    chapters = [p for p in _pages(html) if p.startswith("notebooks/")]
    assert rows >= len(chapters), text[:2000]
    # the profile the build ran at: smoke here, or the one named for a book built before
    assert "completed" in text and (os.environ.get("BOOK_TEST_LABEL") or "smoke") in text
    # the landing page's scale table links each chapter
    browser.get(f"{base}/intro.html")
    assert _wait(browser, "document.readyState === 'complete'")
    assert "At which scale" in browser.execute_script("return document.body.innerText")


def test_internal_links_resolve(served, browser):
    base, html = served
    broken = []
    checked = set()
    for page in _pages(html):
        browser.get(f"{base}/{page}")
        hrefs = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            url = urllib.parse.urldefrag(href).url
            if not url.startswith(base) or url in checked:
                continue
            checked.add(url)
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    ok = resp.status == 200
            except Exception:
                ok = False
            if not ok:
                broken.append(f"{page} -> {href}")
    assert checked, "no internal links found"
    assert not broken, "\n".join(broken)


def test_no_remote_assets_are_needed(served):
    """Reading the book offline: no script or stylesheet is loaded from another host."""
    _, html = served
    for page in _pages(html):
        text = (html / page).read_text()
        for marker in ['src="http', "src='http", 'href="https://cdn', "cdn.jsdelivr"]:
            assert marker not in text, f"{page} loads a remote asset ({marker})"


# A reader's screen: what a chapter shows before its first figure must fit in two of them,
# so that a wall of criteria or tables above the results cannot come back unnoticed.
SCREEN = (1280, 800)
FIRST_FIGURE_BY = 1600


@pytest.fixture
def screen(browser):
    """The browser with a 1280x800 viewport (not the window's size, which includes the
    browser's own frame), restored afterwards."""
    width, height = SCREEN
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _chapters(html: Path) -> list[str]:
    """Chapter pages that judge claims (the reproducibility page has no figure)."""
    return [p for p in _pages(html) if p.startswith("notebooks/") and "reproducibility" not in p]


def _open(browser, url: str) -> None:
    browser.get(url)
    assert _wait(browser, "document.readyState === 'complete'")
    _wait(browser, "Array.from(document.images).every(i => i.complete)")


TOP = "el => el ? Math.round(el.getBoundingClientRect().top + window.scrollY) : null"


def test_a_chapter_opens_with_its_verdicts_and_reaches_its_first_figure_early(served, screen):
    base, html = served
    problems, heights = [], []
    for page in _chapters(html):
        _open(screen, f"{base}/{page}")
        box, figure, height = screen.execute_script(
            f"const top = {TOP}; return [top(document.querySelector('article .verdicts')), "
            "top(document.querySelector('article .cell_output img')), "
            "document.documentElement.scrollHeight]")
        heights.append(f"{page}: verdicts at {box}, first figure at {figure}, page {height} px")
        if box is None or figure is None:
            problems.append(f"{page}: no verdict box or no figure")
        elif not box < figure <= FIRST_FIGURE_BY:
            problems.append(f"{page}: verdicts at {box} px, first figure at {figure} px "
                            f"(at most {FIRST_FIGURE_BY})")
    print("\n".join(heights))
    assert not problems, "\n".join(problems + heights)


OVERFLOW = """
const column = document.querySelector('article.bd-article') || document.querySelector('article');
const right = column.getBoundingClientRect().right;
const out = [];
for (const table of column.querySelectorAll('table')) {
  if (!table.offsetParent || table.getBoundingClientRect().right <= right + 1) continue;
  let el = table.parentElement, scrolls = false;
  for (; el && el !== column; el = el.parentElement) {
    const x = getComputedStyle(el).overflowX;
    if ((x === 'auto' || x === 'scroll') && el.getBoundingClientRect().right <= right + 1) {
      scrolls = true;
      break;
    }
  }
  if (!scrolls) out.push((table.innerText || '').slice(0, 80).replace(/\\s+/g, ' '));
}
return out;
"""


def test_no_table_runs_past_its_column(served, screen):
    """A wide table scrolls inside the text column; none is cut off at its edge."""
    base, html = served
    problems = []
    for page in _pages(html):
        _open(screen, f"{base}/{page}")
        problems += [f"{page}: {t}" for t in screen.execute_script(OVERFLOW)]
    assert not problems, "\n".join(problems)


def _fetch(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read() if resp.status == 200 else None
    except Exception:
        return None


def test_every_figure_links_the_table_behind_it(served, screen):
    """Under each figure a link to its data as CSV, relative (it works from a copy of the
    book on disk), that resolves; the execution report links each chapter's runs."""
    base, html = served
    problems = []
    for page in _chapters(html):
        _open(screen, f"{base}/{page}")
        figures, links = screen.execute_script(
            "const out = Array.from(document.querySelectorAll('article .cell_output'));"
            "return [document.querySelectorAll('article .cell_output img').length,"
            " out.flatMap(o => Array.from(o.querySelectorAll('a[href]')))"
            "    .map(a => [a.getAttribute('href'), a.href])"
            "    .filter(([raw]) => raw.split('#')[0].endsWith('.csv'))]")
        if len(links) != figures:
            problems.append(f"{page}: {figures} figures, {len(links)} data links")
        for raw, url in links:
            body = _fetch(url)
            if raw.startswith(("http:", "https:", "/")):
                problems.append(f"{page}: {raw} is not a relative link")
            elif not body or not body.decode().startswith("panel,"):
                problems.append(f"{page}: {raw} does not resolve to a figure's table")
    _open(screen, f"{base}/execution.html")
    runs = screen.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
        ".filter(h => h.endsWith('-runs.csv'))")
    if len(runs) < len(_chapters(html)):
        problems.append(f"execution report: {len(runs)} run tables linked")
    problems += [f"execution report: {u} does not resolve" for u in runs
                 if not (_fetch(u) or b"").startswith(b"run,")]
    assert not problems, "\n".join(problems)


def test_screenshots_of_the_headline_edge_of_stability_and_claims_pages(served, screen):
    """For a reader of the test run: each page's first screen and the whole page."""
    base, _ = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width, height = SCREEN
    for page in ("notebooks/headline.html", "notebooks/edge_of_stability.html",
                 "claims.html"):
        _open(screen, f"{base}/{page}")
        name = page.removeprefix("notebooks/").removesuffix(".html")
        screen.save_screenshot(str(ARTIFACTS / f"{name}-first-screen.png"))
        full = min(screen.execute_script("return document.documentElement.scrollHeight"),
                   16000)
        screen.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": full, "deviceScaleFactor": 1, "mobile": False})
        _wait(screen, "Array.from(document.images).every(i => i.complete)")
        screen.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        screen.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
