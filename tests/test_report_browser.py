"""The report page in a real browser: headless Chromium lays it out with no horizontal
overflow at 1400 px (issue 31, "a picture that focuses the eye").

The page of a failing test with six lanes (two test sockets, a broker, two workers, and
the peer of a socket nobody is known to serve) is opened with a small script added at
its end, which opens the folded sections and writes what it measured into the DOM;
``chromium --headless --dump-dom`` prints that DOM. With ``ZMQPROCESSTEST_SCREENSHOT_DIR``
set (``.ci/run`` sets it) a screenshot of the page as written is kept there, a CI
artifact. Skipped, saying why, where no Chromium is installed (``.ci/run`` installs
Debian's ``chromium``).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase, process
from zmqprocesstest.processes import _reaper
from zmqprocesstest.processes._os import child_pids
from zmqprocesstest.report_html import finish_dir

from .support import run_case
from howto.failing_samples import broker, worker

#: The browsers looked for on PATH, in order.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: How long one headless run may take: about 1-3 s here; a browser that hangs fails the test.
BROWSER_TIMEOUT = 90.0
#: The window width the page must fit (a laptop's browser window).
WIDTH = 1400
SCREENSHOT_ENV = "ZMQPROCESSTEST_SCREENSHOT_DIR"

_MEASURE = """<script>
for (const d of document.querySelectorAll("details")) d.open = true;
const root = document.documentElement;
document.body.setAttribute("data-measured", JSON.stringify({
  scroll: root.scrollWidth, client: root.clientWidth,
  diagrams: Array.from(document.querySelectorAll(".diagram"), d => [d.scrollWidth, d.clientWidth]),
  svgs: document.querySelectorAll("svg").length}));
</script>
"""


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def headless(browser, profile, *args):
    """Run the browser headless at WIDTH px; return its stdout. Nothing is left behind:
    its process group is killed when it is done (or outlives BROWSER_TIMEOUT), and
    the helpers that left it (the crash reporter starts a session of its own) are
    orphans of this process, a subreaper: killed and reaped too."""
    _reaper.prepare_runner()  # this process becomes the reaper of the browser's orphans
    before = set(child_pids())
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={profile}", f"--window-size={WIDTH},900", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{argv[0]} did not finish within {BROWSER_TIMEOUT} s") from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its helpers (zygote, GPU, utility) go with it
        except ProcessLookupError:
            pass
        proc.wait()
        _reaper.kill_and_reap([pid for pid in child_pids() if pid not in before])
    if proc.returncode != 0:
        raise AssertionError(f"{argv} exited with {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return out.decode("utf-8", "replace")


def six_lanes_case():
    @process
    class SixLanes(ProcessTestCase):
        """A broker, two workers started from the same function, a client, and a socket
        whose peer no process is known to serve."""

        def test_upper(self):
            frontend, backend = self.new_endpoint(), self.new_endpoint()
            self.start_process(broker, frontend, backend)
            self.start_process(worker, backend, "w1")
            self.start_process(worker, backend, "w2")
            client = self.socket(zmq.DEALER, connect=frontend, name="client")
            stray = self.socket(zmq.DEALER, connect=self.new_endpoint(), name="stray")
            yield ("send", stray, [], ["anyone", "there?"])  # queued: nobody listens
            yield ("send", client, [], ["upper", "one"])
            reply = yield ("recv", client)
            self.assertEqual(reply, [["ok", "w1", "one"]])

    return SixLanes


@unittest.skipIf(find_browser() is None, f"no headless browser: none of {', '.join(BROWSERS)} is on PATH "
                 "(.ci/run installs Debian's chromium)")
class TestInABrowser(unittest.TestCase):

    def test_the_page_of_a_failing_test_fits_1400_px(self):
        with tempfile.TemporaryDirectory() as directory:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ZMQPROCESSTEST_REPORT")}
            env["ZMQPROCESSTEST_REPORT_DIR"] = directory
            with mock.patch.dict(os.environ, env, clear=True):
                result = run_case(six_lanes_case())
            finish_dir(directory)
            self.assertEqual(len(result.failures), 1, result.failures + result.errors)
            pages = os.listdir(os.path.join(directory, "tests"))
            page_path = os.path.join(directory, "tests", pages[0])
            with open(page_path, encoding="utf-8") as f:
                page = f.read()
            for lane in ("client", "stray", "broker", "worker", "worker#2", "(process not known)"):
                self.assertIn(f'font-weight="bold">{lane}</text>', page)
            measured_path = os.path.join(directory, "measured.html")
            with open(measured_path, "w", encoding="utf-8") as f:
                f.write(page.replace("</body>", _MEASURE + "</body>"))
            browser = find_browser()
            dom = headless(browser, os.path.join(directory, "profile"), "--dump-dom", "file://" + measured_path)
            found = re.search(r'data-measured="([^"]*)"', dom)
            self.assertIsNotNone(found, dom[-2000:])
            measured = json.loads(found.group(1).replace("&quot;", '"'))
            self.assertEqual(measured["svgs"], 2)  # the diagram, and the teardown's
            self.assertLessEqual(measured["scroll"], measured["client"], measured)  # no page scrollbar
            for scroll, client in measured["diagrams"]:  # nor a diagram's own
                self.assertLessEqual(scroll, client, measured)
            screenshots = os.environ.get(SCREENSHOT_ENV)
            if screenshots:
                os.makedirs(screenshots, exist_ok=True)
                shot = os.path.join(os.path.abspath(screenshots), f"report_page_{WIDTH}px.png")
                headless(browser, os.path.join(directory, "profile"), f"--screenshot={shot}", "file://" + page_path)
                self.assertGreater(os.path.getsize(shot), 0)


if __name__ == "__main__":
    unittest.main()
