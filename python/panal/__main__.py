"""`python -m panal` is the `panal` command."""
import sys

from .cli import main

sys.exit(main())
