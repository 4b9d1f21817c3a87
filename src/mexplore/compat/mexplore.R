# mexplore.R: the R client of mexplore's algorithm protocol (docs/algorithm-protocol.md).
#
# An algorithm written in R runs as `[algorithm] command = ["Rscript", "me.R"]`; mexplore
# sets MEXPLORE_R_CLIENT to this file's path, so the algorithm starts with
#
#   source(Sys.getenv("MEXPLORE_R_CLIENT"))
#   study <- mx_start()                  # the study: space, constants, budget, workers, seed, options
#   repeat {
#     results <- mx_map(points)          # a list of points (named lists) or a data.frame
#     if (is.null(results)) break        # the run stopped: its budget is spent
#     ...                                # result$objective, result$status, result$params
#   }
#   mx_done()
#
# Messages are JSON lines on stdin (from mexplore) and stdout (to it): print with message()
# (stderr), not print() or cat() on stdout, or mexplore takes your line for program output.
# Needs the jsonlite package (Debian: r-cran-jsonlite; CRAN: install.packages("jsonlite")).

suppressPackageStartupMessages(library(jsonlite))

.mx <- new.env()

mx_start <- function() {
  .mx$input <- file("stdin", open = "r")
  .mx$submitted <- 0L
  .mx$stopped <- FALSE
  .mx$early <- list()
  start <- .mx_read()
  if (is.null(start) || !identical(start$type, "start")) stop("expected mexplore's start message on stdin")
  start
}

# Queue points as tasks (higher priority first); returns their ids (0, 1, ... across the run).
mx_submit <- function(points, priority = 0) {
  points <- .mx_points(points)
  .mx_send(list(type = "submit", points = points, priority = priority))
  ids <- .mx$submitted + seq_along(points) - 1L
  .mx$submitted <- .mx$submitted + length(points)
  ids
}

# Submit points and wait for all their results, in the order given; NULL if the run stops first.
mx_map <- function(points, priority = 0) {
  ids <- mx_submit(points, priority)
  got <- list()
  for (id in intersect(names(.mx$early), as.character(ids))) {
    got[[id]] <- .mx$early[[id]]
    .mx$early[[id]] <- NULL
  }
  while (length(got) < length(ids)) {
    message <- if (.mx$stopped) NULL else .mx_read()
    if (is.null(message) || identical(message$type, "stop")) {
      .mx$stopped <- TRUE
      return(NULL)
    }
    if (identical(message$type, "result")) {
      key <- as.character(message$id)
      if (message$id %in% ids) got[[key]] <- message else .mx$early[[key]] <- message
    }
  }
  unname(got[as.character(ids)])
}

# The next finished task, waiting for it; NULL once the run has stopped.
mx_next_result <- function() {
  if (length(.mx$early) > 0) {
    result <- .mx$early[[1]]
    .mx$early[[1]] <- NULL
    return(result)
  }
  while (!.mx$stopped) {
    message <- .mx_read()
    if (is.null(message) || identical(message$type, "stop")) .mx$stopped <- TRUE
    else if (identical(message$type, "result")) return(message)
  }
  NULL
}

mx_priorities <- function(ids, priorities) .mx_send(list(type = "priority", ids = I(ids), priorities = I(priorities)))
mx_cancel <- function(ids) .mx_send(list(type = "cancel", ids = I(ids)))
mx_done <- function() .mx_send(list(type = "done"))

# A result's objective as a number (NaN for a task that gave none).
mx_value <- function(result) {
  value <- result$objective
  if (is.null(value) || identical(value, "NaN")) return(NaN)
  as.numeric(value)
}

.mx_points <- function(points) {
  if (is.data.frame(points)) points <- lapply(seq_len(nrow(points)), function(i) as.list(points[i, , drop = FALSE]))
  lapply(points, as.list)
}

.mx_send <- function(message) {
  cat(toJSON(message, auto_unbox = TRUE, digits = NA, null = "null"), "\n", sep = "")
  flush(stdout())
}

.mx_read <- function() {
  line <- readLines(.mx$input, n = 1, warn = FALSE)
  if (length(line) == 0 || !nzchar(line)) return(NULL)
  fromJSON(line, simplifyVector = FALSE)
}
