"""`python -m ingest` runs the `ingest` command."""

import sys

from ingest.cli import main

sys.exit(main())
