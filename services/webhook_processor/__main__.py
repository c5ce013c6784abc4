from services.common.serve import main
from services.webhook_processor.app import NAME, build_runtime

main(NAME, build_runtime)
