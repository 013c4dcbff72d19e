"""``python -m clinx_hub.cli`` (as torchrun runs it): the ``clinx`` command."""

import sys

from clinx_hub.cli import main

sys.exit(main())
