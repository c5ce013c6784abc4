from services.common.lean_process import hide_unused_libraries

hide_unused_libraries()  # before anything imports structlog: see lean_process.py

from services.webhook_processor.app import main  # noqa: E402

main()
