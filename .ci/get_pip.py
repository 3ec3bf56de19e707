"""Stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test creates each sanity test's virtual environment without pip and fetches get-pip.py
from a host this machine cannot reach. `make setup` downloads the same pip release from PyPI as
a wheel next to this file in ansible-test's cache, and this script runs pip from that wheel, as
get-pip.py does from its embedded copy:

    python get_pip_X_Y.py [pip options] pip==X.Y [packages] [--no-setuptools] [--no-wheel]
"""

from __future__ import annotations

import glob
import os
import runpy
import sys

here = os.path.dirname(os.path.abspath(__file__))
version = os.path.splitext(os.path.basename(__file__))[0].removeprefix("get_pip_").replace("_", ".")
wheels = glob.glob(os.path.join(here, f"pip-{version}-*.whl"))
if not wheels:
    sys.exit(f"{__file__}: no pip-{version} wheel in {here}; run `make setup`")

# get-pip.py's own options; without them it would also install setuptools and wheel.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.path.insert(0, wheels[0])
sys.argv = ["pip", "install", "--find-links", here, *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
