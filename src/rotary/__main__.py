"""`python -m rotary` runs the command line."""

from rotary.cli import main

raise SystemExit(main())
