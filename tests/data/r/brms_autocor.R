# brms 2.18 references for the residual autocorrelation terms ar() and cosy()
# (issue 23). Regenerate from tests/data:  Rscript r/brms_autocor.R
# Writes brms_autocor.csv (the simulated data, rows shuffled, some time points
# dropped so groups are unbalanced and have gaps) and brms_autocor.json
# (posterior mean, sd and MCSE of the mean of every parameter, per model).
suppressMessages({library(brms); library(jsonlite); library(posterior)})
set.seed(20261201)
G <- 30; T <- 10
d <- expand.grid(time = 1:T, g = sprintf("s%02d", 1:G), stringsAsFactors = FALSE)
d$x <- rnorm(nrow(d))
eta <- 1 + 0.5 * d$x
# ar(time, g) (brms' regression form, cov = FALSE):
#   mu_n = eta_n + ar * (y_{n-1} - eta_{n-1}), y_n ~ N(mu_n, sigma)
d$y_ar <- NA
for (gg in unique(d$g)) {
  idx <- which(d$g == gg); e_prev <- 0
  for (n in idx) { mu <- eta[n] + 0.6 * e_prev
    d$y_ar[n] <- rnorm(1, mu, 0.8); e_prev <- d$y_ar[n] - eta[n] }
}
# cosy(time, g): y_g ~ MVN(eta_g, sigma^2 [(1 - rho) I + rho 11'])
u <- rnorm(G, 0, sqrt(0.4))[match(d$g, unique(d$g))]
d$y_cs <- eta + u + rnorm(nrow(d), 0, sqrt(0.6))
drop <- sample(nrow(d), 25)                  # unbalanced groups with gaps
d <- d[-drop, ]
d <- d[sample(nrow(d)), ]                    # data order != time order
write.csv(d, "brms_autocor.csv", row.names = FALSE)

summ <- function(fit, pars) {
  dr <- as_draws_df(fit)
  s <- summarise_draws(subset_draws(dr, variable = pars), "mean", "sd", "mcse_mean",
                       "ess_bulk", "rhat")
  out <- lapply(seq_len(nrow(s)), function(i) list(mean = s$mean[i], sd = s$sd[i],
    mcse_mean = s$mcse_mean[i], ess_bulk = s$ess_bulk[i], rhat = s$rhat[i]))
  names(out) <- s$variable
  out
}
ctrl <- list(adapt_delta = 0.9)
m_ar1 <- brm(y_ar ~ x + ar(time, g), data = d, chains = 4, iter = 3000, warmup = 1000,
             seed = 1, refresh = 0, control = ctrl)
m_ar2 <- update(m_ar1, formula. = y_ar ~ x + ar(time, g, p = 2), newdata = d,
                chains = 4, iter = 3000, warmup = 1000, seed = 2, refresh = 0)
m_cs <- brm(y_cs ~ x + cosy(time, g), data = d, chains = 4, iter = 3000, warmup = 1000,
            seed = 3, refresh = 0, control = ctrl)
res <- list(
  brms_version = as.character(packageVersion("brms")),
  draws = "4 chains x 2000 post-warmup",
  ar1 = list(formula = "y_ar ~ x + ar(time, g)",
             pars = summ(m_ar1, c("b_Intercept", "b_x", "ar[1]", "sigma"))),
  ar2 = list(formula = "y_ar ~ x + ar(time, g, p = 2)",
             pars = summ(m_ar2, c("b_Intercept", "b_x", "ar[1]", "ar[2]", "sigma"))),
  cosy = list(formula = "y_cs ~ x + cosy(time, g)",
              pars = summ(m_cs, c("b_Intercept", "b_x", "cosy", "sigma"))),
  ar1_fitted = list(note = "fitted(m_ar1) posterior mean of mu (incl. the ar term), rows in the data order (brms restores it)",
                    mu_mean = as.numeric(fitted(m_ar1)[, "Estimate"]))
)
write(toJSON(res, auto_unbox = TRUE, digits = 12, pretty = TRUE), "brms_autocor.json")
cat("done\n")
