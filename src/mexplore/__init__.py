"""mexplore: model exploration on HPC machines, in the EMEWS tradition, under mpiexec.

The public names most users need; everything else lives in its room (see docs/).
"""

from .errors import MexploreError, Pruned
from .types import Result, Status, Task

__all__ = ["MexploreError", "Pruned", "Result", "Status", "Task"]
__version__ = "0.1.0"
