from chaos_service.cli.main import main

raise SystemExit(main())
