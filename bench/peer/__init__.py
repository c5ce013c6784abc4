"""The bare four-stage Kafka pipeline that `make bench` measures the project against.

Four processes, each `aiokafka` consume batch -> parse JSON -> produce to the next topic with
acks=all -> commit, on the same broker as the project and with the same partition count:
what Kafka and Python allow on this machine when a stage does nothing but move records. It
shares nothing with the product (no imports from services/ or contracts/), so a change to
the runtime cannot change the yardstick.

It then runs the same bare stages in the shape of the project's own flow (`shape.py`: its
records, their sizes and counts, its four processes): the most any implementation of that
flow can carry on this machine and broker, so the project's figures against it show what its
own work costs, apart from what the flow's records cost to move.

    .venv/bin/python -m bench.peer [--bootstrap HOST:PORT] [--full]

From the project's bench: `run_peer(bootstrap)` returns the figures, its `headline` entry the
numbers to compare, and `format_ratios(project_headline, peer_headline)` the ratios.
"""

from bench.peer.measure import HALF_CAPACITY, PeerSizes, PlannedPhase, cpu_over, headline, run_peer
from bench.peer.ratios import format_ratios, ratios

__all__ = [
    "HALF_CAPACITY",
    "PeerSizes",
    "PlannedPhase",
    "cpu_over",
    "format_ratios",
    "headline",
    "ratios",
    "run_peer",
]
