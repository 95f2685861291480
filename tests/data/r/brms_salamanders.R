# brms 2.18 references for mixedformula's zero-inflated and hurdle count families on glmmTMB's
# Salamanders data (issue 19). Run from the repository root:
#   Rscript tests/data/r/brms_salamanders.R
# writes tests/data/salamanders.csv and tests/data/brms_salamanders.json (posterior means, sds,
# bulk ESS, number of draws and prior_summary of each model, brms names).
# `mined` is re-levelled to c("no", "yes") so that brms' coefficient is `minedyes`, the name
# mixedformula gives it (levels sorted as strings, the first the reference).
suppressMessages({library(brms); library(glmmTMB); library(jsonlite)})
out_json <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else "tests/data/brms_salamanders.json"
out_dir <- dirname(out_json)
data(Salamanders, package = "glmmTMB")
sal <- data.frame(count = Salamanders$count,
                  mined = factor(as.character(Salamanders$mined), levels = c("no", "yes")),
                  site = as.character(Salamanders$site),
                  spp = as.character(Salamanders$spp),
                  cover = Salamanders$cover)
write.csv(sal, file.path(out_dir, "salamanders.csv"), row.names = FALSE)
res <- list()
summ <- function(fit) {
  d <- as.data.frame(as_draws_df(fit))
  keep <- grep("^(b_|sd_|cor_|shape|zi$|hu$)", names(d), value = TRUE)
  ps <- prior_summary(fit)
  dd <- as_draws_df(fit)
  list(mean = as.list(colMeans(d[keep])), sd = as.list(sapply(d[keep], sd)),
       ess_bulk = as.list(sapply(keep, function(v) posterior::ess_bulk(dd[[v]]))),
       ndraws = nrow(d),
       prior = data.frame(prior = ps$prior, class = ps$class, coef = ps$coef,
                          group = ps$group, dpar = ps$dpar))
}
save <- function() write(toJSON(res, auto_unbox = TRUE, digits = 10, pretty = TRUE), out_json)

f1 <- brm(bf(count ~ mined + (1 | site), zi ~ mined), data = sal,
          family = zero_inflated_poisson(), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$zip <- summ(f1)
res$zip$formula <- "bf(count ~ mined + (1 | site), zi ~ mined), family = zero_inflated_poisson()"
save()

f2 <- brm(bf(count ~ mined + (1 | site), hu ~ mined), data = sal,
          family = hurdle_poisson(), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$hurdle_poisson <- summ(f2)
res$hurdle_poisson$formula <- "bf(count ~ mined + (1 | site), hu ~ mined), family = hurdle_poisson()"
save()

f3 <- brm(bf(count ~ mined + (1 | site), hu ~ mined), data = sal,
          family = hurdle_negbinomial(), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$hurdle_negbinomial <- summ(f3)
res$hurdle_negbinomial$formula <- "bf(count ~ mined + (1 | site), hu ~ mined), family = hurdle_negbinomial()"
save()
