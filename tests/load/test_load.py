"""32 clients search while 4 upload, for 40 s after a 20 s warm-up (in which the allocator's
arenas settle), against `phantoscope up` on its embedded stores with 300 photos: every answer
is a 200, and the API server's memory at the end is within 20 % of what it was after the
warm-up. Prints the figures (-s)."""

from __future__ import annotations

import pytest
from load import run_load

# bench's engine (`phantoscope up`) takes the operator ports
pytestmark = pytest.mark.usefixtures("fixed_ports")


def test_search_while_uploading_without_errors_or_growth():
    report = run_load(preload=300, searchers=32, uploaders=4, warmup_s=20, duration_s=40)
    print("\n" + "\n".join(report.lines()))
    assert report.errors == []
    assert report.searches > 0 and report.uploads > 0
    assert abs(report.rss_end_mb / report.rss_after_warmup_mb - 1) <= 0.20
