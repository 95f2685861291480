# brms 2.18 default priors of the categorical family (get_prior: no model is compiled).
# Run: Rscript tests/data/r/brms_categorical_prior.R  (writes tests/data/brms_categorical_prior.json)
suppressMessages({library(brms); library(jsonlite)})
out <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else "tests/data/brms_categorical_prior.json"
d <- read.csv("tests/data/categorical_sim.csv")
tab <- function(p) data.frame(prior = p$prior, class = p$class, coef = p$coef, group = p$group,
                              dpar = p$dpar, lb = p$lb, ub = p$ub)
res <- list(
  shared_id = tab(get_prior(y ~ x + (1 | p | g), data = d, family = categorical())),
  slopes = tab(get_prior(y ~ x + (1 + x | g), data = d, family = categorical())),
  brms_version = as.character(packageVersion("brms")))
write(toJSON(res, auto_unbox = TRUE, pretty = TRUE), out)
