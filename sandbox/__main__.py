from aesh.commands.sandbox import main

raise SystemExit(main())
