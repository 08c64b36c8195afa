"""The built website, as a reader sees it: every page of _build/html in headless Chromium.

Run after the build (`make test` does: build, then `pytest -m browser tests/test_book.py`).
Checks that each page renders, every image the site serves has loaded, no internal link is
broken, formulas are typeset by the site's own copy of MathJax (no raw TeX left, with every
other host unreachable), chapter pages hide the Colab set-up cell and launch this repository's
notebook (as _config.yml names it) on Colab. Saves each toc page's first screen to
_build/screenshots/<page>.png, and the screen around its first figure to <page>-figure.png.

Without Chromium the tests fail and say so: a browser test must never pass unseen.
"""

import functools
import http.server
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from book_config import repository
from toc_files import ROOT, toc_entries, toc_notebooks

pytestmark = pytest.mark.browser

SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
COLAB = repository().colab_prefix  # https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/

# Headless and quiet: no GPU, no sandbox (we run as root in CI containers), and nothing that
# phones home. The host-resolver rule makes every non-local name fail at once: the pages are
# seen as on a machine with no network, so anything they need (MathJax) must come from the site.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

# Every HTML file Sphinx wrote, except theme assets.
PAGES = sorted(
    p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if "_static" not in p.parts
)


def _page_of(entry):
    """The HTML page a toc entry becomes: notebooks/00_setup(.ipynb) -> notebooks/00_setup.html."""
    return str(Path(entry).with_suffix("")) + ".html"


TOC_PAGES = {_page_of(entry) for entry in toc_entries()}
CHAPTER_PAGES = {_page_of(nb): Path(nb).name for nb in toc_notebooks()}  # page -> notebook
# Pages with formulas: Sphinx writes each as <span|div class="math notranslate ...">\(...\)</...>.
MATH_PAGES = [p for p in PAGES if 'class="math notranslate' in (SITE / p).read_text(errors="replace")]

# Waits until MathJax has typeset the page and its fonts have loaded (or failed), then reports
# what a reader sees. Raw TeX is looked for in the page's visible text with code hidden, since
# a code cell may legitimately show a backslash or dollar signs.
MATH_REPORT_JS = r"""
const done = arguments[arguments.length - 1];
const report = (startupError) => {
  const hideCode = document.createElement("style");
  hideCode.textContent = "pre, code, .highlight { display: none !important; }";
  document.head.appendChild(hideCode);
  const text = document.body.innerText;
  hideCode.remove();
  const raw = [];
  for (const pattern of [/\\\(/g, /\\\[/g, /\$\$/g]) {
    for (const m of text.matchAll(pattern)) {
      raw.push(text.slice(Math.max(0, m.index - 30), m.index + 50));
    }
  }
  const failedFonts = [], loadedFonts = [];
  document.fonts.forEach(f => {
    if (/MJX/i.test(f.family) && f.status === "error") failedFonts.push(f.family);
    if (/MJX/i.test(f.family) && f.status === "loaded") loadedFonts.push(f.family);
  });
  const maths = Array.from(document.querySelectorAll("span.math, div.math"));
  done({
    startupError: startupError,
    math: maths.length,
    untypeset: maths.filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.slice(0, 80)),
    containers: document.querySelectorAll("mjx-container").length,
    errors: Array.from(document.querySelectorAll("mjx-merror"),
                       e => e.getAttribute("data-mjx-error") || e.textContent),
    scripts: Array.from(document.scripts, s => s.src).filter(src => /mathjax/i.test(src)),
    failedFonts: failedFonts,
    loadedFonts: loadedFonts,
    raw: raw.slice(0, 5),
  });
};
if (!document.querySelector("span.math, div.math")) {
  report(null);
} else {
  const deadline = Date.now() + 30000;
  (function wait() {
    const mj = window.MathJax;  // the page's config object until MathJax itself has loaded
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise
        .then(() => { void document.body.offsetHeight; return document.fonts.ready; })
        .then(() => report(null), e => report("MathJax failed: " + e));
    } else if (Date.now() > deadline) {
      report("MathJax never started (its script did not load?)");
    } else {
      setTimeout(wait, 100);
    }
  })();
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass  # one line per request would bury pytest's output


@pytest.fixture(scope="module")
def site_url():
    """The built site served from a thread on a free port of 127.0.0.1."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"No built site in {SITE}: run `make book` first.")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven through its chromedriver (nothing is downloaded)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail(
            "The browser test needs Debian's Chromium and its driver, and "
            f"{'chromedriver' if chromium else 'chromium'} is not installed. Install them with "
            "`apt-get install chromium chromium-driver` (`make test` does this when it runs as "
            "root). The built site has NOT been checked."
        )
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="convviz-chromium-")  # fresh profile every run
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=chromedriver)
    )
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)  # MATH_REPORT_JS gives up on MathJax after 30 s
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()  # a removed chapter must not leave its screenshot behind
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _fetch(url):
    """(HTTP status, body text) of a URL on the local server; each URL fetched once."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def _broken_internal_links(hrefs, site_url):
    """Links into the site whose file is missing, or whose #fragment names no element."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(site_url):
            continue  # external (github.com, colab, doi.org...): not ours to check offline
        url, _, fragment = href.partition("#")
        status, body = _fetch(url)
        if status != 200:
            broken.append(f"{href} (HTTP {status})")
        elif fragment and f'id="{urllib.parse.unquote(fragment)}"' not in body:
            broken.append(f"{href} (no element with id {fragment!r})")
    return broken


def test_site_has_math_and_its_own_mathjax():
    """The math checks in test_page are not vacuous: the book has formulas, and MathJax is in the site."""
    assert MATH_PAGES, "No page has a formula: is myst's dollarmath still enabled in _config.yml?"
    mathjax = SITE / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file(), (
        f"{mathjax.relative_to(ROOT)} is missing: the site would need a CDN for its formulas "
        "(sphinx-mathjax-offline in requirements.txt and _config.yml copies it)"
    )


def test_site_has_every_toc_page():
    """Each document in _toc.yml became a page (the per-page tests below cover only what exists)."""
    missing = sorted(page for page in TOC_PAGES if not (SITE / page).is_file())
    assert (SITE / "index.html").is_file(), f"No built site in {SITE}: run `make book` first."
    assert not missing, f"Pages in _toc.yml that were not built: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page(page, site_url, browser):
    url = site_url + page
    browser.get(url)
    # index.html is only a meta refresh to the first page. Check the page the reader lands on:
    # read mid-redirect, the blank page in between showed an empty body (seen on a busy CPU).
    if 'http-equiv="refresh"' in (SITE / page).read_text(errors="replace").lower():
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 30).until(
            lambda d: d.current_url != url and d.execute_script("return document.readyState") == "complete"
        )
    state = browser.execute_script(
        """return {
            title: document.title,
            text: document.body ? document.body.innerText : "",
            html: document.documentElement.outerHTML,
            images: Array.from(document.images, i => [i.currentSrc || i.src, i.complete, i.naturalWidth]),
            figures: Array.from(document.querySelectorAll("article img[src*='_images/']"),
                                i => [i.getAttribute("src"), i.alt, !!i.closest("figure")]),
            links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
            launch: Array.from(
                document.querySelectorAll(".article-header-buttons a[href*='colab.research.google.com']"),
                a => a.href),
        };"""
    )

    # Renders: a title, some text, and not an error page.
    assert state["title"].strip(), f"{page}: empty <title>"
    assert state["text"].strip(), f"{page}: empty body"
    assert "404" not in state["title"], f"{page}: title says {state['title']!r}"

    # Formulas are typeset by the site's own MathJax: no host but 127.0.0.1 resolves here.
    math = browser.execute_async_script(MATH_REPORT_JS)
    remote = [src for src in math["scripts"] if not src.startswith(site_url)]
    assert not remote, f"{page}: MathJax loaded from outside the site: {remote}"
    assert not math["raw"], f"{page}: raw TeX visible to readers: {math['raw']}"
    if page in MATH_PAGES:
        assert not math["startupError"], f"{page}: {math['startupError']}"
        assert math["math"] and not math["untypeset"], f"{page}: formulas left as TeX: {math['untypeset']}"
        assert math["containers"] >= math["math"], f"{page}: {math}"
        assert not math["errors"], f"{page}: MathJax could not typeset: {math['errors']}"
        assert not math["failedFonts"], f"{page}: MathJax fonts that did not load: {math['failedFonts']}"
        # Without its fonts MathJax still draws, in the browser's fonts: wrong, and no error.
        assert math["loadedFonts"], f"{page}: no MathJax font loaded"

    # Images the site serves have loaded. External ones (the Colab badge) cannot load on a
    # closed network and are the browser's business, not the build's.
    unloaded = [src for src, complete, width in state["images"]
                if src.startswith(site_url) and not (complete and width > 0)]
    assert not unloaded, f"{page}: images that did not load: {unloaded}"

    broken = _broken_internal_links(state["links"], site_url)
    assert not broken, f"{page}: broken internal links: {broken}"

    if page in CHAPTER_PAGES:
        expected = COLAB + "notebooks/" + CHAPTER_PAGES[page]
        assert state["launch"] == [expected], (
            f"{page}: the header's Colab launch button should open {expected}, "
            f"found {state['launch']}"
        )
        # Every Colab link on the page (badge included) opens this very notebook on main.
        colab_links = {h for h in state["links"] if h.startswith("https://colab.research.google.com/github/")}
        assert colab_links <= {expected}, f"{page}: Colab links elsewhere: {colab_links - {expected}}"
        # A figure a reader cannot see needs words: myst-nb otherwise uses the image's file
        # path as its alt text. Set per plotting cell in the notebook's cell metadata:
        # {"mystnb": {"image": {"alt": "..."}}} or {"mystnb": {"figure": {"caption": "..."}}}.
        unlabelled = [src for src, alt, captioned in state["figures"]
                      if not captioned and (not alt.strip() or "_images/" in alt)]
        assert not unlabelled, (
            f"{page}: {len(unlabelled)} figure(s) without alt text or caption (add "
            f"mystnb.image.alt to the plotting cell's metadata): {unlabelled}"
        )
        # The install-on-Colab cell runs in the notebook but is hidden on the site.
        assert '"google.colab" in sys.modules' not in state["text"], (
            f"{page}: the Colab set-up cell is visible; tag it remove-cell"
        )

    if page in TOC_PAGES:
        stem = Path(page).stem
        browser.save_screenshot(str(SCREENSHOTS / f"{stem}.png"))
        # The first screen of a chapter is mostly prose; a second shot shows its first figure.
        if browser.execute_script(
            "const img = document.querySelector('article img[src*=\"_images/\"]');"
            "if (!img) return false; img.scrollIntoView({block: 'start'}); window.scrollBy(0, -120);"
            "return true;"
        ):
            browser.save_screenshot(str(SCREENSHOTS / f"{stem}-figure.png"))
