"""Register the default operator, pipeline and application with a deployment's stores.

Usage: ``python register_defaults.py OPERATOR_ENDPOINT``

Runs once before the API replicas serve (the compose file's ``init`` service, the Kubernetes
Job ``phantoscope-init``), with the API server's own ``PHANTOSCOPE_*`` settings. It registers
the operator serving at OPERATOR_ENDPOINT as ``efficientnet-lite0``, or points that
registration at OPERATOR_ENDPOINT if it exists, and creates the pipeline ``default`` and the
application ``default`` (image field ``image``) where they are missing: what
``phantoscope up`` does on its first start. OPERATOR_ENDPOINT is ``host:port``, or
``host:port,host:port,...`` for the replicas of the operator (the API server spreads calls
over them). Running it again changes only the endpoints: the new list replaces the old one.
"""

from __future__ import annotations

import sys

from phantoscope.config import ServerSettings
from phantoscope.engine.context import Stores
from phantoscope.cli.launcher import DEFAULT_APPLICATION, DEFAULT_OPERATOR, ensure_defaults


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    endpoint = argv[0]
    stores = Stores.open(ServerSettings())
    try:
        ensure_defaults(stores, endpoint)
    finally:
        stores.close()
    print(f"operator {DEFAULT_OPERATOR!r} at {endpoint}; application {DEFAULT_APPLICATION!r} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
