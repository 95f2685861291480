# brms 2.18 references for the covariance form ar(cov = TRUE) / arma(cov = TRUE) (issue 23).
# Regenerate from tests/data:  Rscript r/brms_arcov.R
# Data: brms_autocor.csv (made by r/brms_autocor.R). Writes brms_arcov.json.
suppressMessages({library(brms); library(jsonlite); library(posterior)})
d <- read.csv("brms_autocor.csv")
summ <- function(fit, pars) {
  dr <- as_draws_df(fit)
  s <- summarise_draws(subset_draws(dr, variable = pars), "mean", "sd", "mcse_mean",
                       "ess_bulk", "rhat")
  out <- lapply(seq_len(nrow(s)), function(i) list(mean = s$mean[i], sd = s$sd[i],
    mcse_mean = s$mcse_mean[i], ess_bulk = s$ess_bulk[i], rhat = s$rhat[i]))
  names(out) <- s$variable
  out
}
m_ar <- brm(y_ar ~ x + ar(time, g, cov = TRUE), data = d, chains = 4, iter = 2000,
            warmup = 1000, seed = 1, refresh = 0)
m_arma <- brm(y_ar ~ x + arma(time, g, p = 1, q = 1, cov = TRUE), data = d, chains = 4,
              iter = 2000, warmup = 1000, seed = 2, refresh = 0)
pr <- get_prior(y_ar ~ x + arma(time, g, p = 1, q = 1, cov = TRUE), data = d)
res <- list(
  brms_version = as.character(packageVersion("brms")),
  draws = "4 chains x 1000 post-warmup",
  ar_cov = list(formula = "y_ar ~ x + ar(time, g, cov = TRUE)",
                pars = summ(m_ar, c("b_Intercept", "b_x", "ar[1]", "sigma"))),
  arma_cov = list(formula = "y_ar ~ x + arma(time, g, p = 1, q = 1, cov = TRUE)",
                  pars = summ(m_arma, c("b_Intercept", "b_x", "ar[1]", "ma[1]", "sigma"))),
  arma_cov_prior = lapply(seq_len(nrow(pr)), function(i) list(prior = pr$prior[i],
    class = pr$class[i], coef = pr$coef[i], lb = pr$lb[i], ub = pr$ub[i]))
)
write(toJSON(res, auto_unbox = TRUE, digits = 12, pretty = TRUE), "brms_arcov.json")
cat("done\n")
