# brms reference for a multivariate model with one family per response and group effects
# correlated across the responses through a shared ID (issue #18):
# bf(y1 ~ x + (1 | p | g), family = poisson()) + bf(y2 ~ x + (1 | p | g)) + set_rescor(FALSE)
# (tests/test_mv_family_brms.py). The data are simulated here (seed below) and stored with the
# numbers; brms' default priors (as mixedformula's). Also records brms' default rescor for
# mixed families and its refusal of set_rescor(TRUE).
# Regenerate: cd tests/data && Rscript r/brms_mv_family.R   (brms 2.18, rstan; ~2 min)
suppressPackageStartupMessages({library(brms); library(jsonlite)})
set.seed(20261203)
J <- 30; m <- 6
g <- rep(sprintf("g%02d", 1:J), each = m)
x <- round(rnorm(J * m), 4)
S <- matrix(c(0.5^2, 0.6 * 0.5 * 0.8, 0.6 * 0.5 * 0.8, 0.8^2), 2)
u <- MASS::mvrnorm(J, c(0, 0), S); rownames(u) <- sprintf("g%02d", 1:J)
y1 <- rpois(J * m, exp(0.7 + 0.4 * x + u[g, 1]))
y2 <- round(1 - 0.5 * x + u[g, 2] + rnorm(J * m, 0, 0.7), 6)
d <- data.frame(y1 = y1, y2 = y2, x = x, g = g)
f <- bf(y1 ~ x + (1 | p | g), family = poisson()) + bf(y2 ~ x + (1 | p | g))
default_rescor <- tryCatch({
  ff <- brms:::validate_formula(f, data = d)
  ff$rescor}, error = function(e) conditionMessage(e))
refusal <- tryCatch({
  make_stancode(f + set_rescor(TRUE), data = d); "allowed"},
  error = function(e) conditionMessage(e))
fit <- brm(f + set_rescor(FALSE), data = d, chains = 4, iter = 2000, warmup = 1000, seed = 1,
           refresh = 0, backend = "rstan", cores = 1)
dr <- as_draws_df(fit)
keep <- grep("^(b_|sd_|cor_|sigma|rescor)", variables(fit), value = TRUE)
ll <- log_lik(fit)
out <- list(brms_version = as.character(packageVersion("brms")),
            default_rescor = default_rescor, rescor_true = refusal,
            names = keep,
            mean = unname(sapply(keep, function(v) mean(dr[[v]]))),
            sd = unname(sapply(keep, function(v) sd(dr[[v]]))),
            ess = unname(sapply(keep, function(v) posterior::ess_mean(dr[[v]]))),
            elpd_loo = loo(fit)$estimates["elpd_loo", "Estimate"],
            prior = lapply(as.data.frame(prior_summary(fit))[c("prior", "class", "coef",
                                                               "group", "resp", "dpar")],
                           as.character),
            data = d)
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_mv_family.json")
