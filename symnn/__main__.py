"""``python -m symnn ...``: the command line."""

from .cli import main

raise SystemExit(main())
