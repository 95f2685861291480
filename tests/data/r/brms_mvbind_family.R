# brms 2.18 default priors of mvbind(y1, y3) ~ x + (1 | p | g) with one non-gaussian family
# (brms splits mvbind into one bf() per response: MV(poisson, poisson)), for
# tests/test_mv_family.py (issue #18). get_prior only, nothing sampled.
# Regenerate: cd tests/data && Rscript r/brms_mvbind_family.R   (~10 s)
suppressPackageStartupMessages({library(brms); library(jsonlite)})
ref <- fromJSON("brms_mv_family.json")
d <- as.data.frame(ref$data)
d$y3 <- d$y1 + 1
ps <- function(p) lapply(as.data.frame(p)[c("prior", "class", "coef", "group", "resp",
                                            "dpar")], as.character)
pp <- get_prior(bf(mvbind(y1, y3) ~ x + (1 | p | g)) + set_rescor(FALSE), data = d,
                family = poisson())
pn <- get_prior(bf(mvbind(y1, y3) ~ x + (1 | g)) + set_rescor(FALSE), data = d,
                family = negbinomial())
out <- list(brms_version = as.character(packageVersion("brms")),
            prior_poisson = ps(pp), prior_negbinomial = ps(pn))
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_mvbind_family.json")
