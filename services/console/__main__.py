from services.common.serve import main
from services.console.app import NAME, build_runtime

main(NAME, build_runtime)
