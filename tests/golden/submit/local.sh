#!/bin/bash

# Written by `mexplore submit`: study 'golden' on 1 node(s) of site 'local',
# 4 ranks: rank 0 is the master (it takes one rank slot), ranks 1-3 are workers.
# No walltime: the run ends when the study is done (Ctrl-C stops it cleanly).
# A stopped or killed run loses no finished task; to go on where it stopped, run again:
#   bash /project/out/submit.sh

cd /project
/venv/bin/mpiexec -n 4 \
    /venv/bin/python -m mexplore run /project/study.toml -o /project/out --progress log --set study.budget=10
