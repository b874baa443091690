"""``python -m sessionward``: the command line (see :mod:`sessionward.cli`)."""

from .cli import main

raise SystemExit(main())
