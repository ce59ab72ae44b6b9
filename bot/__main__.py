"""``python -m bot`` → :func:`bot.cli.main`; nothing else."""

import sys

from bot.cli import main

sys.exit(main())
