#!/usr/bin/env bash
# A model in bash: the 2-D Rosenbrock function, computed with awk.
# Called as: bash rosenbrock.sh X Y   (the study passes "{x}" "{y}" as arguments)
# Contract: write the objective to $MEXPLORE_RESULT_FILE (a number, or a JSON object);
# a non-zero exit is a failed task, and what it printed to stderr goes into the record.
set -euo pipefail
x=$1
y=$2
echo "evaluating at x=$x y=$y in $(pwd)"
awk -v x="$x" -v y="$y" 'BEGIN {
  f = (1 - x) ^ 2 + 100 * (y - x * x) ^ 2
  printf "{\"f\": %.17g, \"distance\": %.17g}\n", f, sqrt((1 - x) ^ 2 + (1 - y) ^ 2)
}' > "$MEXPLORE_RESULT_FILE"
