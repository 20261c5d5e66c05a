"""What the parallel job's forkserver imports once, before it forks a process per step
(`parallel.py`): the job, and what a tile's ingest imports only on first use, Great
Expectations above all (1.9 s of CPU, measured; a tile of the corpus takes 0.05-0.5 s).
Importing this module imports those, nothing else."""

from citypipe.core import gxenv
from citypipe.orchestration import parallel

__all__ = ["parallel"]

gxenv.gx()
