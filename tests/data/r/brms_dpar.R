# brms reference for distributional regression (tests/test_dpar.py).
# Regenerate: cd tests/data && Rscript r/brms_dpar.R   (brms 2.18, rstan)
# brms_dpar.csv was simulated once in Python (numpy default_rng(20261201)): 25 groups g00..g24
# of 12 rows, x ~ N(0, 1), u_g ~ N(0, 0.7), v_g ~ N(0, 0.35),
# sigma = exp(-0.2 + 0.4 x + v_g), y = 1 + 0.5 x + u_g + sigma * N(0, 1).
suppressPackageStartupMessages({library(brms); library(jsonlite)})
d <- read.csv("brms_dpar.csv")
tab <- function(p) {
  p <- as.data.frame(p)
  lapply(p[c("prior", "class", "coef", "group", "resp", "dpar", "source")[
    c("prior", "class", "coef", "group", "resp", "dpar", "source") %in% names(p)]],
    as.character)
}
draws_summary <- function(fit) {
  dr <- as_draws_df(fit)
  keep <- grep("^(b_|sd_|cor_|sigma|r_g)", variables(fit), value = TRUE)
  list(names = keep,
       mean = unname(sapply(keep, function(v) mean(dr[[v]]))),
       sd = unname(sapply(keep, function(v) sd(dr[[v]]))),
       ess = unname(sapply(keep, function(v) posterior::ess_mean(dr[[v]]))))
}
f1 <- bf(y ~ x + (1 | g), sigma ~ x + (1 | g))
f2 <- bf(y ~ x + (1 | p | g), sigma ~ x + (1 | p | g))
out <- list()
out$get_prior <- tab(get_prior(f1, d))
out$get_prior_shared <- tab(get_prior(f2, d))
# other families' default priors for dpar formulas (no fit needed)
set.seed(5); d$cnt <- rpois(nrow(d), 2); d$pr <- plogis(d$x) * 0.9 + 0.05; d$y2 <- d$y + 1
out$get_prior_zip <- tab(get_prior(bf(cnt ~ x, zi ~ x + (1 | g)), d,
                                   family = zero_inflated_poisson()))
out$get_prior_nb <- tab(get_prior(bf(cnt ~ x, shape ~ x), d, family = negbinomial()))
out$get_prior_student <- tab(get_prior(bf(y ~ x, sigma ~ x, nu ~ x), d, family = student()))
out$get_prior_beta <- tab(get_prior(bf(pr ~ x, phi ~ x), d, family = Beta()))
out$get_prior_hurdle <- tab(get_prior(bf(cnt ~ x, hu ~ x), d, family = hurdle_poisson()))
out$get_prior_mv <- tab(get_prior(bf(y ~ x, sigma ~ x) + bf(y2 ~ x) + set_rescor(FALSE), d))
out$rescor_with_sigma <- tryCatch({
  make_stancode(bf(y ~ x, sigma ~ x) + bf(y2 ~ x) + set_rescor(TRUE), d); "allowed"},
  error = function(e) conditionMessage(e))
fit1 <- brm(f1, d, chains = 4, iter = 2000, warmup = 1000, seed = 11, refresh = 0,
            cores = 1)
out$fit <- draws_summary(fit1)
out$prior_summary <- tab(prior_summary(fit1))
fit2 <- brm(f2, d, chains = 4, iter = 3000, warmup = 1000, seed = 12, refresh = 0,
            cores = 1)
out$fit_shared <- draws_summary(fit2)
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, pretty = TRUE), "brms_dpar.json")
