# Extra brms 2.18 numbers for tests/test_mv_family_brms.py (issue #18), beside
# brms_mv_family.R: the same fit (same data, seed and settings) refitted for the standard
# error and pointwise values of elpd_loo, and brms' default priors of a bernoulli + gaussian
# pair (yb = y1 > 1) and a negbinomial + gaussian pair (get_prior only, nothing sampled).
# Regenerate: cd tests/data && Rscript r/brms_mv_family_extra.R   (~2 min)
suppressPackageStartupMessages({library(brms); library(jsonlite)})
ref <- fromJSON("brms_mv_family.json")
d <- as.data.frame(ref$data)
f <- bf(y1 ~ x + (1 | p | g), family = poisson()) + bf(y2 ~ x + (1 | p | g))
fit <- brm(f + set_rescor(FALSE), data = d, chains = 4, iter = 2000, warmup = 1000, seed = 1,
           refresh = 0, backend = "rstan", cores = 1)
lo <- loo(fit)
d$yb <- as.integer(d$y1 > 1)
ps <- function(p) lapply(as.data.frame(p)[c("prior", "class", "coef", "group", "resp",
                                            "dpar")], as.character)
pb <- get_prior(bf(yb ~ x + (1 | p | g), family = bernoulli()) +
                bf(y2 ~ x + (1 | p | g)) + set_rescor(FALSE), data = d)
pn <- get_prior(bf(y1 ~ x + (1 | p | g), family = negbinomial()) +
                bf(y2 ~ x + (1 | p | g)) + set_rescor(FALSE), data = d)
out <- list(brms_version = as.character(packageVersion("brms")),
            elpd_loo = lo$estimates["elpd_loo", "Estimate"],
            elpd_loo_se = lo$estimates["elpd_loo", "SE"],
            p_loo = lo$estimates["p_loo", "Estimate"],
            prior_bernoulli_gaussian = ps(pb), prior_negbinomial_gaussian = ps(pn))
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_mv_family_extra.json")
