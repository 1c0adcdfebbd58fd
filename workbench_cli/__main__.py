from workbench_cli.main import main

raise SystemExit(main())
