"""``python -m mg5bench`` (and ``torchrun -m mg5bench``) enters the same CLI as the console script."""

from mg5bench.cli import main

raise SystemExit(main())
