# brms references for the addition terms (tests/test_addition_brms.py).
# Regenerate: cd tests/data && Rscript r/brms_addition.R   (brms 2.18, rstan; ~40 min under load)
# The stored JSON holds the first five models from this script; the se(sigma = TRUE) and trunc()
# fits at its end were run on their own by r/brms_addition_extra.R (the truncated gaussian's data
# drawn there with its own seed, and stored with its numbers).
# Every model has explicit priors (the same strings are passed to mixedformula) so that the
# comparison does not depend on brms' data-dependent default priors. Draws: 4 x 1000.
suppressPackageStartupMessages({library(brms); library(jsonlite)})
set.seed(20261202)
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
out <- list(brms_version = as.character(packageVersion("brms")))
save <- function() writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
                               "brms_addition.json")

# 1. Poisson with an exposure offset (the glmer offset data of offset_reference.R)
d1 <- read.csv("offset_data.csv")
p1 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sd))
m1 <- fitb(y ~ x + offset(log(t)) + (1 | g), d1, poisson(), p1)
out$poisson_offset <- c(summ(m1), list(data = "offset_data.csv")); save()

# 2. weighted gaussian
J <- 12; n <- 150
g <- sample(sprintf("g%02d", 1:J), n, replace = TRUE)
u <- rnorm(J, 0, 0.7); names(u) <- sprintf("g%02d", 1:J)
x <- rnorm(n); w <- round(runif(n, 0.2, 3), 3)
y <- 1 + 0.5 * x + u[g] + rnorm(n, 0, 1 / sqrt(w))
d2 <- data.frame(y = round(y, 6), x = round(x, 6), w = w, g = g)
p2 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sd), prior(student_t(3, 0, 2.5), class = sigma))
m2 <- fitb(y | weights(w) ~ x + (1 | g), d2, gaussian(), p2)
out$weighted_gaussian <- c(summ(m2), list(data = d2)); save()

# 3. kidney: censored weibull survival with a group term (levels sorted as mixedformula does)
data("kidney", package = "brms")
k <- kidney[, c("time", "censored", "patient", "age", "sex", "disease")]
k$sex <- factor(as.character(k$sex)); k$disease <- factor(as.character(k$disease))
p3 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sd), prior(gamma(0.01, 0.01), class = shape))
m3 <- fitb(time | cens(censored) ~ age + sex + disease + (1 | patient), k, weibull(), p3)
out$kidney_weibull <- c(summ(m3), list(data = k)); save()
p3l <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
         prior(student_t(3, 0, 2.5), class = sd), prior(student_t(3, 0, 2.5), class = sigma))
m3l <- fitb(time | cens(censored) ~ age + sex + disease + (1 | patient), k, lognormal(), p3l)
out$kidney_lognormal <- summ(m3l); save()

# 4. meta-analysis with known standard errors
ks <- 30
sei <- round(runif(ks, 0.1, 0.5), 4); xm <- round(rnorm(ks), 4)
theta <- 0.3 + 0.2 * xm + rnorm(ks, 0, 0.25)
d4 <- data.frame(yi = round(rnorm(ks, theta, sei), 6), sei = sei, xm = xm,
                 study = sprintf("s%02d", 1:ks))
p4 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sd))
m4 <- fitb(yi | se(sei) ~ xm + (1 | study), d4, gaussian(), p4)
out$meta_se <- c(summ(m4), list(data = d4)); save()
p4s <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
         prior(student_t(3, 0, 2.5), class = sigma))
m4s <- fitb(yi | se(sei, sigma = TRUE) ~ xm, d4, gaussian(), p4s)
out$meta_se_sigma <- summ(m4s); save()

# 5. truncated gaussian
n5 <- 200
x5 <- rnorm(n5); y5 <- numeric(0); xs <- numeric(0)
while (length(y5) < n5) {
  xx <- rnorm(1); yy <- rnorm(1, 0.5 + 1 * xx, 1.2)
  if (yy > 0 && yy < 4) { y5 <- c(y5, yy); xs <- c(xs, xx) }
}
d5 <- data.frame(y = round(y5, 6), x = round(xs, 6))
p5 <- c(prior(normal(0, 5), class = b), prior(student_t(3, 0, 2.5), class = Intercept),
        prior(student_t(3, 0, 2.5), class = sigma))
m5 <- fitb(y | trunc(lb = 0, ub = 4) ~ x, d5, gaussian(), p5)
out$truncated_gaussian <- c(summ(m5), list(data = d5)); save()

out$brms_version <- as.character(packageVersion("brms"))
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, dataframe = "columns"),
           "brms_addition.json")
