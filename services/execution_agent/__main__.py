from services.common.serve import main
from services.execution_agent.app import NAME, build_runtime

main(NAME, build_runtime)
