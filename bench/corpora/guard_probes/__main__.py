"""``python -m bench.corpora.guard_probes``: write the corpus to a directory."""

import sys

from .generate import main

sys.exit(main())
