"""`python -m pipeline.enhance INPUT -o OUTPUT ...` (the same as the `enhance` command)."""
import sys

from pipeline.enhance.cli import main

sys.exit(main())
