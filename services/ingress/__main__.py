from services.common.lean_process import hide_unused_libraries

hide_unused_libraries()  # before anything imports structlog: see lean_process.py

from services.common.serve import main  # noqa: E402
from services.ingress.app import NAME, build_runtime  # noqa: E402

main(NAME, build_runtime)
