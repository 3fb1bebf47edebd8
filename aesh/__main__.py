from aesh.cli import main

raise SystemExit(main())
