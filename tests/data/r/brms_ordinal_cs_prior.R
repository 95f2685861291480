# brms 2.18 get_prior() rows for ordinal models with category-specific effects (no fit needed)
# and what brms does with cs() in a cumulative model (a warning; the fit goes ahead).
# Run: Rscript tests/data/r/brms_ordinal_cs_prior.R  (writes tests/data/brms_ordinal_cs_prior.json)
suppressMessages({library(brms); library(jsonlite)})
out <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else "tests/data/brms_ordinal_cs_prior.json"
data(inhaler)
res <- list()
for (fam in c("sratio", "cratio", "acat")) {
  gp <- get_prior(rating ~ period + cs(treat) + (1 | subject), data = inhaler,
                  family = get(fam)("logit"))
  res[[fam]] <- data.frame(prior = gp$prior, class = gp$class, coef = gp$coef,
                           group = gp$group, source = gp$source)
}
warned <- NULL
invisible(withCallingHandlers(
  make_stancode(rating ~ period + cs(treat) + (1 | subject), data = inhaler,
                family = cumulative("logit")),
  warning = function(w) { warned <<- conditionMessage(w); invokeRestart("muffleWarning") }))
res$cumulative_warning <- warned
write(toJSON(res, auto_unbox = TRUE, pretty = TRUE), out)
