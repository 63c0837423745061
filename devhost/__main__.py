"""``python -m devhost``: serve the Functions app in ``--root`` (see ``--help``)."""

import sys

from devhost.server import main

if __name__ == "__main__":
    sys.exit(main())
