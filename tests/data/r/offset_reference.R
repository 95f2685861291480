# Offsets in glmer / lmer (tests/test_offset.py). Regenerate: cd tests/data && Rscript r/offset_reference.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261201)
J <- 20; n <- 400
g <- sample(sprintf("g%02d", 1:J), n, replace = TRUE)
u <- rnorm(J, 0, 0.5); names(u) <- sprintf("g%02d", 1:J)
x <- rnorm(n); t <- runif(n, 0.5, 5)
y <- rpois(n, t * exp(0.3 + 0.5 * x + u[g]))
z <- 1 + 2 * x + 0.8 * t + u[g] + rnorm(n, 0, 1)
d <- data.frame(y = y, x = round(x, 6), t = round(t, 6), z = round(z, 6), g = g)
write.csv(d, "offset_data.csv", row.names = FALSE)
newd <- data.frame(x = c(-1, 0, 1.5), t = c(1, 2.5, 4), g = c("g01", "g07", "new"))
ctl <- glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10))
m <- glmer(y ~ x + offset(log(t)) + (1 | g), d, family = poisson, control = ctl)
p <- predict(m, newd, allow.new.levels = TRUE)
l <- lmer(z ~ x + offset(0.8 * t) + (1 | g), d, REML = TRUE)
out <- list(
  glmer = list(formula = "y ~ x + offset(log(t)) + (1 | g)", fixef = unname(fixef(m)),
               se = unname(sqrt(diag(as.matrix(vcov(m))))), theta = unname(getME(m, "theta")),
               logLik = as.numeric(logLik(m)), predict_link = unname(p),
               fitted = unname(fitted(m))[1:5]),
  lmer = list(formula = "z ~ x + offset(0.8 * t) + (1 | g)", fixef = unname(fixef(l)),
              sigma = sigma(l), theta = unname(getME(l, "theta")),
              REML = as.numeric(REMLcrit(l)), fitted = unname(fitted(l))[1:5],
              residuals = unname(residuals(l))[1:5]))
writeLines(toJSON(out, digits = 17, auto_unbox = TRUE), "offset_reference.json")
