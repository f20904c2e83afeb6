# Stan's own NUTS (rstan, diag_e, Stan's warmup) on one posteriordb posterior, for the `nuts` suite's side-by-side
# figures: prints one JSON line per figure, as the suite does for our adapters.
#   Rscript rstan_nuts.R <posterior.json> <chains> <warmup> <samples> <seed> <cache dir> [<name in the figures>]
# The JSON file holds the Stan program (stan_code) and its data (posteriordb's, as in ../shared/posteriordb), or
# names its data set (src/FunctionalBayes.PosteriorDb/data).
# Gradients are the leapfrog steps of warmup and sampling (n_leapfrog__), min bulk ESS is R's posterior
# package over every model parameter (lp__ excluded); seconds are the wall time of sampling() alone.
suppressPackageStartupMessages({ library(rstan); library(jsonlite); library(posterior) })
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 6) stop("usage: rstan_nuts.R <posterior.json> <chains> <warmup> <samples> <seed> <cache dir> [<name>]")
spec <- fromJSON(args[1], simplifyVector = TRUE)
# a posterior without its own data block names its data set, stored beside it as <dataset>.data.json
# ([[ ]]: `$` would match "data" to "dataset" by prefix)
if (is.null(spec[["data"]]) && !is.null(spec[["dataset"]]))
  spec[["data"]] <- fromJSON(file.path(dirname(args[1]), paste0(spec[["dataset"]], ".data.json")), simplifyVector = TRUE)[["data"]]
chains <- as.integer(args[2]); warmup <- as.integer(args[3]); samples <- as.integer(args[4]); seed <- as.integer(args[5])
cache <- args[6]
dir.create(cache, showWarnings = FALSE, recursive = TRUE)
# compile once per program text: the compiled model is kept in the cache directory
# Debian's rstan 2.21 parses the old array syntax: `array[N] real<lower=0> y;` becomes `real<lower=0> y[N];`
code <- gsub("array\\[([^]]+)\\]\\s+(\\w+(<[^>]*>)?)\\s+(\\w+)", "\\2 \\4[\\1]", sub("\n+$", "", spec$stan_code), perl = TRUE)
stan_file <- file.path(cache, paste0(spec$name, ".stan"))
if (!file.exists(stan_file) || paste(readLines(stan_file, warn = FALSE), collapse = "\n") != code) writeLines(code, stan_file)
# Debian's r-cran-bh is an empty shim over the system Boost (/usr/include/boost) and rstan looks for BH's
# include folder: give it one in the cache, pointing at /usr/include
if (system.file("include", package = "BH") == "" && dir.exists("/usr/include/boost")) {
  shim <- file.path(cache, "rlib")
  if (!dir.exists(file.path(shim, "BH"))) {
    dir.create(shim, showWarnings = FALSE)
    file.copy(find.package("BH"), shim, recursive = TRUE)
    file.symlink("/usr/include", file.path(shim, "BH", "include"))
  }
  .libPaths(c(shim, .libPaths()))
}
rstan_options(auto_write = TRUE)
sm <- stan_model(stan_file)
started <- Sys.time()
fit <- sampling(sm, data = spec[["data"]], chains = chains, warmup = warmup, iter = warmup + samples, seed = seed,
                cores = min(chains, parallel::detectCores()), refresh = 0,
                control = list(adapt_delta = if (grepl("eight_schools", spec$name)) 0.95 else 0.8))
seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
sp <- get_sampler_params(fit, inc_warmup = TRUE)
grads <- sum(sapply(sp, function(c) sum(c[, "n_leapfrog__"])))
draws <- as_draws_array(fit)
draws <- subset_draws(draws, variable = setdiff(variables(draws), "lp__"))
ess <- min(summarise_draws(draws, ess_bulk)$ess_bulk)
divergent <- sum(sapply(sp, function(c) sum(c[(warmup + 1):(warmup + samples), "divergent__"])))
tag <- if (length(args) >= 7) args[7] else gsub("[^A-Za-z0-9_]", "_", spec$name)
line <- function(name, value, unit) cat(sprintf('{"name":"nuts_%s_rstan_%s","value":%.6g,"unit":"%s"}\n', tag, name, value, unit))
line("min_ess_bulk_per_grad", ess / grads, "1/grad")
line("min_ess_bulk_per_s", ess / seconds, "1/s")
line("gradients", grads, "count")
line("min_ess_bulk", ess, "draws")
line("wall", seconds, "s")
# chain-seconds of warmup and sampling (Stan's own timer) per gradient: the gradient and the sampler's work
line("us_per_grad_in_sampler", sum(get_elapsed_time(fit)) / grads * 1e6, "us")
line("divergences", divergent, "count")
