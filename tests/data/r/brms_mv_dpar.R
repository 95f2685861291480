# brms reference for a multivariate model with a distributional sigma formula on one response:
# bf(y1 ~ x + (1 | g), sigma ~ x) + bf(y2 ~ x + (1 | g)) + set_rescor(FALSE)
# (tests/test_mv_dpar_brms.py). y1, x, g are brms_dpar.csv's y, x, g; y2 is drawn here (seed
# below); the data are stored with the numbers. brms' default priors (as mixedformula's).
# Regenerate: cd tests/data && Rscript r/brms_mv_dpar.R   (brms 2.18, rstan; ~2 min)
suppressPackageStartupMessages({library(brms); library(jsonlite)})
d0 <- read.csv("brms_dpar.csv")
set.seed(20261205)
lev <- sort(unique(d0$g)); v <- rnorm(length(lev), 0, 0.5); names(v) <- lev
d <- data.frame(y1 = d0$y, x = d0$x, g = d0$g)
d$y2 <- round(0.5 - 0.3 * d$x + v[d$g] + rnorm(nrow(d), 0, 0.8), 6)
f <- bf(y1 ~ x + (1 | g), sigma ~ x) + bf(y2 ~ x + (1 | g)) + set_rescor(FALSE)
m <- brm(f, data = d, chains = 4, iter = 2000, warmup = 1000, seed = 1, refresh = 0,
         backend = "rstan", cores = 1)
dr <- as_draws_df(m)
keep <- grep("^(b_|sd_|cor_|sigma|rescor)", variables(m), value = TRUE)
out <- list(brms_version = as.character(packageVersion("brms")),
            names = keep,
            mean = unname(sapply(keep, function(v) mean(dr[[v]]))),
            sd = unname(sapply(keep, function(v) sd(dr[[v]]))),
            ess = unname(sapply(keep, function(v) posterior::ess_mean(dr[[v]]))),
            prior = lapply(as.data.frame(prior_summary(m))[c("prior", "class", "coef", "group",
                                                            "resp", "dpar")], as.character),
            data = d)
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_mv_dpar.json")
