"""``python -m sensocto_lab.cli``: the same as the ``sensocto-lab`` command."""

import sys

from sensocto_lab.cli.main import main

sys.exit(main())
