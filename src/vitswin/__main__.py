"""`python -m vitswin`, the form launchers such as `torchrun -m vitswin` use."""

import sys

from vitswin.cli import main

sys.exit(main())
