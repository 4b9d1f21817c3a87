from mexplore.cli.main import main

raise SystemExit(main())
