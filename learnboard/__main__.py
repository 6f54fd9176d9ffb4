from learnboard.cli import main

raise SystemExit(main())
