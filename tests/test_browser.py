"""The built book in a real browser: headless Chromium, driven by Selenium, against the
HTML served on localhost. Every page loads without console errors, figures are present
and non-empty, math is typeset by the vendored MathJax, internal links resolve."""
import functools
import http.server
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
ARTIFACTS = ROOT / "_build" / "test-artifacts"


@pytest.fixture(scope="module")
def served(smoke_book):
    _, html = smoke_book
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *a, **k: None
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
    assert "completed" in text and "smoke" in text
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
