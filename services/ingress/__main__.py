from services.common.serve import main
from services.ingress.app import NAME, build_runtime

main(NAME, build_runtime)
