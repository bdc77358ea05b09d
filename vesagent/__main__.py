"""``python -m vesagent`` is the same as the ``vesagent`` console script."""

from vesagent.cli import main

raise SystemExit(main())
