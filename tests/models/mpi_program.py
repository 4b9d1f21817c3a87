"""An MPI program started by a command model through the launcher (``mpiexec -n {ranks}``):
each rank logs when it ran, rank 0 prints the result with the size it saw."""

import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
started = time.time()
time.sleep(float(sys.argv[2]))
comm.Barrier()
with open(sys.argv[1], "a") as log:
    log.write(f"{started} {time.time()}\n")
if comm.Get_rank() == 0:
    print(f'MEXPLORE_RESULT {{"objective": {comm.Get_size()}, "size": {comm.Get_size()}}}')
