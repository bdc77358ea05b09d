"""``python -m vesagent.bench`` (``make bench``)."""

import sys

from vesagent.bench.run import main

sys.exit(main())
