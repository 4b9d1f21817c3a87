# An evolution strategy in R, run by mexplore as a program (docs/algorithm-protocol.md):
#   [algorithm] command = ["Rscript", "model-scripts/es.R"]
# Each generation is one point per worker around the best so far; the step shrinks when a
# generation finds nothing better. Float and int parameters only.
source(Sys.getenv("MEXPLORE_R_CLIENT"))

study <- mx_start()
set.seed(if (is.null(study$seed)) 1 else study$seed %% .Machine$integer.max)
space <- study$space
low <- sapply(space, function(p) p$low)
high <- sapply(space, function(p) p$high)
is_int <- sapply(space, function(p) identical(p$type, "int"))
step <- if (is.null(study$options$step)) 0.3 else study$options$step
evaluations <- if (is.null(study$options$evaluations)) Inf else study$options$evaluations

point <- function(x) {
  x <- pmin(pmax(x, low), high)
  x[is_int] <- round(x[is_int])
  values <- lapply(seq_along(x), function(i) if (is_int[i]) as.integer(x[i]) else x[i])
  c(setNames(values, names(space)), study$constants)
}

best <- NULL
best_value <- Inf
spent <- 0
repeat {
  centre <- if (is.null(best)) NULL else best
  batch <- lapply(seq_len(max(1, study$workers)), function(i) {
    if (is.null(centre)) point(runif(length(low), low, high))
    else point(centre + rnorm(length(low), 0, step * (high - low)))
  })
  results <- mx_map(batch)
  if (is.null(results)) break
  spent <- spent + length(results)
  values <- sapply(results, mx_value)
  improved <- FALSE
  for (i in seq_along(values)) {
    if (!is.na(values[i]) && values[i] < best_value) {
      best_value <- values[i]
      best <- unlist(results[[i]]$params[names(space)])
      improved <- TRUE
    }
  }
  if (!improved) step <- step * 0.7
  message(sprintf("es.R: %d evaluated, best %.6g, step %.3g", spent, best_value, step))
  if (spent >= evaluations) break
}
mx_done()
