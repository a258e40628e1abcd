"""``python -m sous``: the same command line as ``sous``."""

from sous.cli import main

raise SystemExit(main())
