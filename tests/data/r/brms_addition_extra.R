# brms references for the two addition-term models brms_addition.R lists last (se(sigma = TRUE)
# and trunc()), run on their own: tests/test_addition_brms.py. They are merged into
# brms_addition.json under "meta_se_sigma" and "truncated_gaussian".
# Regenerate: cd tests/data && Rscript r/brms_addition_extra.R   (brms 2.18, rstan; ~5 min)
# The se(sigma = TRUE) model uses the meta-analysis data stored with "meta_se"; the truncated
# gaussian's data are drawn here (seed below) and stored with its numbers.
suppressPackageStartupMessages({library(brms); library(jsonlite)})
ctl <- list(adapt_delta = 0.95)
fitb <- function(f, d, fam, pri) {
  brm(f, data = d, family = fam, prior = pri, chains = 4, iter = 2000, warmup = 1000,
      seed = 1, refresh = 0, control = ctl, backend = "rstan", cores = 1)
}
summ <- function(m) {
  dr <- as_draws_df(m)
  keep <- grep("^(b_|sd_|sigma$|shape$|nu$)", names(dr), value = TRUE)
  list(mean = as.list(colMeans(dr[, keep])), sd = as.list(apply(dr[, keep], 2, sd)),
       formula = paste(deparse(formula(m)$formula), collapse = ""))
}
out <- fromJSON("brms_addition.json", simplifyVector = TRUE)
save <- function() writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
                               "brms_addition.json")

# 4s. meta-analysis with known standard errors plus a residual sd
d4 <- as.data.frame(out$meta_se$data)
p4s <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
         prior(student_t(3, 0, 2.5), class = sigma))
m4s <- fitb(yi | se(sei, sigma = TRUE) ~ xm, d4, gaussian(), p4s)
out$meta_se_sigma <- summ(m4s); save()

# 5. truncated gaussian: y | x ~ N(0.5 + x, 1.2) kept only inside (0, 4)
set.seed(20261203)
n5 <- 200
y5 <- numeric(0); xs <- numeric(0)
while (length(y5) < n5) {
  xx <- rnorm(1); yy <- rnorm(1, 0.5 + 1 * xx, 1.2)
  if (yy > 0 && yy < 4) { y5 <- c(y5, yy); xs <- c(xs, xx) }
}
d5 <- data.frame(y = round(y5, 6), x = round(xs, 6))
p5 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sigma))
m5 <- fitb(y | trunc(lb = 0, ub = 4) ~ x, d5, gaussian(), p5)
out$truncated_gaussian <- c(summ(m5), list(data = d5)); save()
