"""The load test drives bench/load.py, which imports its neighbours as top-level modules."""

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
