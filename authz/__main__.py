"""`python -m authz` is the `authz` command."""

from authz.cli import main

raise SystemExit(main())
