"""The distributions: what a user installs from the package index carries the LICENSE."""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile

from .support import ROOT


class TestDistributions(unittest.TestCase):
    def test_sdist_and_wheel_ship_the_license(self):
        with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
            self.assertIn("MIT License", f.read())
        with tempfile.TemporaryDirectory() as work:
            # A copy: building writes *.egg-info into the source tree, and runners may
            # run this test twice at once (the runner matrix does).
            source, out = os.path.join(work, "source"), os.path.join(work, "dist")
            shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
                ".git", ".venv", "venv", "*.egg-info", "__pycache__", "build", "dist", "docs", "tests", "benchmarks"))
            built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                                    "--outdir", out, source], capture_output=True, text=True, timeout=300)
            self.assertEqual(built.returncode, 0, built.stdout[-2000:] + built.stderr[-2000:])
            names = sorted(os.listdir(out))
            sdist = next(n for n in names if n.endswith(".tar.gz"))
            wheel = next(n for n in names if n.endswith(".whl"))
            with tarfile.open(os.path.join(out, sdist)) as tar:
                self.assertIn("LICENSE", [os.path.basename(m) for m in tar.getnames()])
            with zipfile.ZipFile(os.path.join(out, wheel)) as whl:
                self.assertTrue(any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
                                    for n in whl.namelist()), whl.namelist())


if __name__ == "__main__":
    unittest.main()
