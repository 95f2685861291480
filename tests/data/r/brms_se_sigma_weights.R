# brms reference for weights(w) + se(sei, sigma = TRUE) with a group term (the multilevel
# meta-analysis of brms_se_sigma_group.R with frequency-like weights in [0.5, 2]):
# tests/test_se_sigma_marginal.py fits it on the marginal engine (study effects integrated out
# per row, row weights w/(se^2 + sigma^2)). brms' Stan code:
#   target += weights[n] * normal_lpdf(Y[n] | mu[n], sqrt(se[n]^2 + sigma^2)).
# Data drawn here (seed below) and stored with the numbers.
# Regenerate: cd tests/data && Rscript r/brms_se_sigma_weights.R   (brms 2.18, rstan; ~2 min)
suppressPackageStartupMessages({library(brms); library(jsonlite)})
set.seed(20261205)
J <- 12; m <- 4; n <- J * m
study <- rep(sprintf("s%02d", 1:J), each = m)
u <- rnorm(J, 0, 0.4); names(u) <- sprintf("s%02d", 1:J)
xm <- round(rnorm(n), 4); sei <- round(runif(n, 0.1, 0.4), 4)
w <- round(runif(n, 0.5, 2), 4)
yi <- 0.3 + 0.2 * xm + u[study] + rnorm(n, 0, 0.25) + rnorm(n, 0, sei)
d <- data.frame(yi = round(yi, 6), sei = sei, w = w, xm = xm, study = study)
pri <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
         prior(student_t(3, 0, 2.5), class = sd), prior(student_t(3, 0, 2.5), class = sigma))
m1 <- brm(yi | weights(w) + se(sei, sigma = TRUE) ~ xm + (1 | study), data = d,
          family = gaussian(), prior = pri, chains = 4, iter = 2000, warmup = 1000, seed = 1,
          refresh = 0, control = list(adapt_delta = 0.95), backend = "rstan", cores = 1)
dr <- as_draws_df(m1)
keep <- grep("^(b_|sd_|sigma$)", names(dr), value = TRUE)
out <- list(brms_version = as.character(packageVersion("brms")),
            formula = paste(deparse(formula(m1)$formula), collapse = ""),
            mean = as.list(colMeans(dr[, keep])), sd = as.list(apply(dr[, keep], 2, sd)),
            rhat = as.list(rhat(m1)[keep]),
            ess = as.list(sapply(keep, function(v) posterior::ess_mean(dr[[v]]))), data = d)
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_se_sigma_weights.json")
