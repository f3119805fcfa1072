"""``python -m ingest`` is the ``ackmail`` command."""

import sys

from ingest.cli import main

sys.exit(main())
