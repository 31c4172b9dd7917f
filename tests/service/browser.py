"""A real headless Chromium (Debian's package, driven by selenium through Debian's
chromedriver: nothing downloads a browser) and a page server, for the browser client's
tests. Where the browser is missing the tests fail with the install hint, never skip."""

import functools
import http.server
import pathlib
import threading

import pytest
import yaml

from tests.service.conftest import EXAMPLE_CATALOG

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install chromium chromium-driver"
# Quiet and offline: no first-run, sync, component or QUIC traffic to wait on or fail.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def open_browser(user_data_dir):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not pathlib.Path(path).exists()]
    if missing:
        pytest.fail(
            f"The browser tests need Debian's Chromium; missing {missing}. Install it: "
            f"{INSTALL_HINT}",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("The browser tests need selenium: pip install -e '.[test]'", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")  # a fresh profile: no cookies
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    return driver


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class PageServer:
    """A static file server of `root` on a free port of 127.0.0.1, in a thread: another
    origin than the service's, as a customer's web site is."""

    def __init__(self, root):
        handler = functools.partial(_Quiet, directory=str(root))
        self.root = pathlib.Path(root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def page(self, name, html):
        (self.root / name).write_text(html)
        return f"{self.origin}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def catalog_for_origin(tmp_path, origin):
    """The example catalog whose public `web-site` connection allows `origin`."""
    catalog = yaml.safe_load(pathlib.Path(EXAMPLE_CATALOG).read_text())
    catalog["schemas"] = str(pathlib.Path(EXAMPLE_CATALOG).parent / catalog["schemas"])
    catalog["connections"]["web-site"]["origins"] = [origin]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return str(path)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Brass gear set</title>
<script src="{service}/static/ingest.js"></script></head>
<body><script>
window.results = null;
(async function () {{
  const ingest = StreamingIngest.create({{
    endpoint: "{service}", connectionId: "web-site", datasetId: "web-events",
    schemaRef: "https://ns.example.com/xdm/experience-event"}});
  const out = {{ecid: ingest.ecid()}};
  out.pageView = await ingest.pageView({{device: {{type: "desktop"}}}});
  out.batch = await ingest.sendBatch([
    {{eventType: "commerce.productViews", commerce: {{productViews: {{value: 1}}}},
      productListItems: [{{SKU: "GEAR-042", name: "Brass gear set", quantity: 1}}]}},
    {{eventType: "commerce.productListAdds", commerce: {{productListAdds: {{value: 1}}}}}}]);
  out.beacon = ingest.beacon({{eventType: "web.webinteraction.linkClicks"}});
  out.invalid = await ingest.send({{eventType: "not.an.event"}}, {{syncValidation: true}});
  window.results = out;
}})().catch(function (error) {{ window.results = {{error: String(error)}}; }});
</script></body></html>
"""


def load_page(driver, url):
    """Opens `url` (a PAGE) and returns what its script reports once it is done."""
    driver.get(url)
    results = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        (function poll() { window.results ? done(window.results) : setTimeout(poll, 50); })();"""
    )
    assert "error" not in results, results["error"]
    return results
