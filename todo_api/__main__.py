"""`python -m todo_api` is the `todo` command."""

import sys

from todo_api.cli import main

sys.exit(main())
