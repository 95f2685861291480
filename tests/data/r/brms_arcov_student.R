# brms 2.18 reference for the student family with ar(cov = TRUE) (issue 23): brms' multivariate
# t per series, multi_student_t(nu, mu_j, sigma^2 Gamma_j) (student_t_time_hom_lpdf).
# Regenerate from tests/data:  Rscript r/brms_arcov_student.R
# Data: the rows, times, groups and x of brms_autocor.csv (made by r/brms_autocor.R) with a new
# response y_t = 1 + 0.5 x + e, e_j ~ multivariate t (nu = 4, scale 0.7^2 Gamma, AR(1) rho = 0.5)
# per group in time order. Writes brms_arcov_student.csv and brms_arcov_student.json.
suppressMessages({library(brms); library(jsonlite); library(posterior)})
d <- read.csv("brms_autocor.csv")[, c("time", "g", "x")]
set.seed(23)
d$y_t <- NA
for (lev in sort(unique(d$g))) {
  rows <- which(d$g == lev)
  rows <- rows[order(d$time[rows])]
  n <- length(rows)
  G <- 0.5^abs(outer(1:n, 1:n, "-")) / (1 - 0.5^2)
  e <- 0.7 * drop(t(chol(G)) %*% rnorm(n)) / sqrt(rchisq(1, 4) / 4)
  d$y_t[rows] <- 1 + 0.5 * d$x[rows] + e
}
write.csv(d, "brms_arcov_student.csv", row.names = FALSE)
summ <- function(fit, pars) {
  dr <- as_draws_df(fit)
  s <- summarise_draws(subset_draws(dr, variable = pars), "mean", "sd", "mcse_mean",
                       "ess_bulk", "rhat")
  out <- lapply(seq_len(nrow(s)), function(i) list(mean = s$mean[i], sd = s$sd[i],
    mcse_mean = s$mcse_mean[i], ess_bulk = s$ess_bulk[i], rhat = s$rhat[i]))
  names(out) <- s$variable
  out
}
f <- y_t ~ x + ar(time, g, cov = TRUE)
m <- brm(f, data = d, family = student(), chains = 4, iter = 2000, warmup = 1000, seed = 1,
         refresh = 0)
pr <- get_prior(f, data = d, family = student())
res <- list(
  brms_version = as.character(packageVersion("brms")),
  draws = "4 chains x 1000 post-warmup",
  student_ar_cov = list(formula = "y_t ~ x + ar(time, g, cov = TRUE)", family = "student",
                        pars = summ(m, c("b_Intercept", "b_x", "ar[1]", "sigma", "nu"))),
  prior = lapply(seq_len(nrow(pr)), function(i) list(prior = pr$prior[i],
    class = pr$class[i], coef = pr$coef[i], lb = pr$lb[i], ub = pr$ub[i]))
)
write(toJSON(res, auto_unbox = TRUE, digits = 12, pretty = TRUE), "brms_arcov_student.json")
cat("done\n")
