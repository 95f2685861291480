# brms 2.18 references for arma() and ma() in the regression form (cov = FALSE), issue 23.
# Regenerate from tests/data:  Rscript r/brms_arma.R
# brms 2.18's Stan recursion (make_stancode), per row n in (group, time) order:
#   mu[n] = eta[n] + sum_k ma[k] err[n-k];  err[n] = y[n] - mu[n];  mu[n] += sum_k ar[k] err[n-k]
# (lags within the group only; err of missing lags = 0). Data simulated from that model.
# Writes brms_arma.csv (rows shuffled, some time points dropped) and brms_arma.json.
suppressMessages({library(brms); library(jsonlite); library(posterior)})
set.seed(20261202)
G <- 30; T <- 10
d <- expand.grid(time = 1:T, g = sprintf("s%02d", 1:G), stringsAsFactors = FALSE)
d$x <- rnorm(nrow(d))
drop <- sample(nrow(d), 25)                  # unbalanced groups with gaps (lags count rows)
d <- d[-drop, ]
eta <- 1 + 0.5 * d$x
sim <- function(ar, ma, sigma) {
  y <- numeric(nrow(d))
  for (gg in unique(d$g)) {
    idx <- which(d$g == gg); idx <- idx[order(d$time[idx])]
    err <- numeric(0)
    for (j in seq_along(idx)) { n <- idx[j]
      lag <- function(k) if (j - k >= 1) err[j - k] else 0
      m <- eta[n] + sum(vapply(seq_along(ma), function(k) ma[k] * lag(k), 0))
      yn <- rnorm(1, m + sum(vapply(seq_along(ar), function(k) ar[k] * lag(k), 0)), sigma)
      err[j] <- yn - m; y[n] <- yn }
  }
  y
}
d$y_arma <- sim(ar = 0.5, ma = 0.3, sigma = 0.8)
d$y_ma <- sim(ar = numeric(0), ma = c(0.6, -0.3), sigma = 0.7)
d <- d[sample(nrow(d)), ]                    # data order != time order
write.csv(d, "brms_arma.csv", row.names = FALSE)

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
m_arma <- brm(y_arma ~ x + arma(time, g, p = 1, q = 1), data = d, chains = 4, iter = 2000,
              warmup = 1000, seed = 1, refresh = 0, control = ctrl)
m_ma <- brm(y_ma ~ x + ma(time, g, q = 2), data = d, chains = 4, iter = 2000,
            warmup = 1000, seed = 2, refresh = 0, control = ctrl)
pr <- get_prior(y_arma ~ x + arma(time, g, p = 1, q = 1), data = d)
res <- list(
  brms_version = as.character(packageVersion("brms")),
  draws = "4 chains x 1000 post-warmup",
  arma = list(formula = "y_arma ~ x + arma(time, g, p = 1, q = 1)",
              pars = summ(m_arma, c("b_Intercept", "b_x", "ar[1]", "ma[1]", "sigma"))),
  ma = list(formula = "y_ma ~ x + ma(time, g, q = 2)",
            pars = summ(m_ma, c("b_Intercept", "b_x", "ma[1]", "ma[2]", "sigma"))),
  arma_fitted = list(note = "fitted(m_arma) posterior mean of mu (incl. the arma terms), rows in the data order",
                     mu_mean = as.numeric(fitted(m_arma)[, "Estimate"])),
  arma_prior = lapply(seq_len(nrow(pr)), function(i) list(prior = pr$prior[i],
    class = pr$class[i], coef = pr$coef[i], lb = pr$lb[i], ub = pr$ub[i]))
)
write(toJSON(res, auto_unbox = TRUE, digits = 12, pretty = TRUE), "brms_arma.json")
cat("done\n")
