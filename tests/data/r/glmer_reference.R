# Reference numbers for tests/test_glmer.py: lme4 1.1-31 glmer / glmmTMB nbinom2 fits.
# Run from the project root:  Rscript tests/data/r/glmer_reference.R
# Writes tests/data/glmer_reference.json and the data CSVs tests/data/glmer_*.csv.
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite); library(MASS)})
out <- list()
# lme4's default tolerances (tolPwrss = 1e-7, bobyqa's rhoend = 2e-7 * rhobeg) stop short of the
# optimum by more than 1e-4 relative (cbpp: fixed effects 4e-4, SEs 1.3%, logLik 2.8e-4 below the
# maximum); the references use tight ones, and cbpp_default keeps the default fit for comparison.
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                     optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
info <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  cf <- summary(fit)$coefficients
  list(fixef = as.list(setNames(cf[, 1], rownames(cf))),
       se = as.list(setNames(cf[, 2], rownames(cf))),
       z = as.list(setNames(cf[, 3], rownames(cf))),
       p = as.list(setNames(cf[, 4], rownames(cf))),
       theta = as.list(getME(fit, "theta")),
       varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
       logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
       deviance = -2 * as.numeric(logLik(fit)), df_resid = df.residual(fit),
       nobs = nobs(fit), singular = isSingular(fit),
       vcov = unname(as.matrix(vcov(fit))),
       ranef = lapply(ranef(fit), function(r) as.list(r)),
       ranef_levels = lapply(ranef(fit), rownames))
}
# cbpp: binomial with trials
data(cbpp)
write.csv(cbpp, "tests/data/glmer_cbpp.csv", row.names = FALSE)
f1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = ctrl)
out$cbpp_laplace <- info(f1)
out$cbpp_default <- info(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                               binomial))
p1 <- data.frame(period = factor(c("1", "2", "4"), levels = levels(cbpp$period)),
                 herd = factor(c("1", "3", "new"), levels = c(levels(cbpp$herd), "new")))
out$cbpp_laplace$predict_link <- unname(predict(f1, newdata = p1, allow.new.levels = TRUE))
out$cbpp_laplace$predict_response <- unname(predict(f1, newdata = p1, type = "response",
                                                    allow.new.levels = TRUE))
f25 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
             nAGQ = 25, control = ctrl)
out$cbpp_agq25 <- info(f25)
# a non-canonical link: lme4 uses Fisher's information in PIRLS and in the Laplace determinant
out$cbpp_probit <- info(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                              binomial(link = "probit"), control = ctrl))
# grouseticks: Poisson, two (then three) random intercepts
data(grouseticks)
write.csv(grouseticks, "tests/data/glmer_grouseticks.csv", row.names = FALSE)
g1 <- glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), grouseticks, poisson,
            control = ctrl)
out$grouseticks <- info(g1)
g2 <- glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION),
            grouseticks, poisson, control = ctrl)
out$grouseticks_obs <- info(g2)
# epilepsy (MASS::epil), Poisson
write.csv(epil, "tests/data/glmer_epil.csv", row.names = FALSE)
e1 <- glmer(y ~ lbase * trt + lage + V4 + (1 | subject), epil, poisson, control = ctrl)
out$epil <- info(e1)
# offset (a column) and prior weights 1, 2, 1, 2, ... (they multiply each row's log-density)
e2 <- glmer(y ~ trt + lage + V4 + (1 | subject), epil, poisson, offset = lbase, control = ctrl)
out$epil_offset <- info(e2)
epil$w <- rep(c(1, 2), length.out = nrow(epil))
e3 <- glmer(y ~ trt + lage + V4 + (1 | subject), epil, poisson, weights = w, control = ctrl)
out$epil_weights <- info(e3)
# simulated Poisson with a correlated intercept + slope term
set.seed(20)
J <- 40; nj <- 12
g <- factor(rep(sprintf("g%02d", 1:J), each = nj)); x <- rnorm(J * nj)
U <- MASS::mvrnorm(J, c(0, 0), matrix(c(0.5, 0.15, 0.15, 0.2), 2))
eta <- 0.3 + 0.4 * x + U[as.integer(g), 1] + U[as.integer(g), 2] * x
sim <- data.frame(y = rpois(J * nj, exp(eta)), x = x, g = g)
write.csv(sim, "tests/data/glmer_poisson_slope.csv", row.names = FALSE)
s1 <- glmer(y ~ x + (x | g), sim, poisson, control = ctrl)
out$poisson_slope <- info(s1)
# bernoulli: VerbAgg (crossed id x item)
data(VerbAgg)
write.csv(VerbAgg[, c("r2", "Anger", "Gender", "btype", "situ", "id", "item")],
          gzfile("tests/data/glmer_verbagg.csv.gz"), row.names = FALSE)
v1 <- glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, binomial,
            control = ctrl)
out$verbagg <- info(v1)
# negative binomial (nbinom2) on grouseticks: glmmTMB (Laplace, observed information) and glmer.nb
n1 <- glmmTMB(TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION), grouseticks, family = nbinom2)
cf <- summary(n1)$coefficients$cond
vc <- VarCorr(n1)$cond
out$nb_glmmtmb <- list(fixef = as.list(setNames(cf[, 1], rownames(cf))),
                       se = as.list(setNames(cf[, 2], rownames(cf))),
                       sd = as.list(sapply(vc, function(v) attr(v, "stddev"))),
                       shape = sigma(n1), logLik = as.numeric(logLik(n1)),
                       AIC = AIC(n1), BIC = BIC(n1))
# (glmer.nb's inner refits fail with tolPwrss = 1e-12: lme4's default control here)
nb <- glmer.nb(TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION), grouseticks)
out$nb_glmernb <- c(info(nb), list(shape = getME(nb, "glmer.nb.theta")))
# gamma (log link), simulated: glmmTMB (Laplace; lme4's glmer does not estimate the shape by ML)
set.seed(7)
gg <- factor(rep(sprintf("g%02d", 1:25), each = 8)); xg <- runif(200)
mug <- exp(1 + 0.5 * xg + rnorm(25, sd = 0.4)[as.integer(gg)])
gam <- data.frame(y = rgamma(200, shape = 3, rate = 3 / mug), x = xg, g = gg)
write.csv(gam, "tests/data/glmer_gamma.csv", row.names = FALSE)
m1 <- glmmTMB(y ~ x + (1 | g), gam, family = Gamma(link = "log"))
cf <- summary(m1)$coefficients$cond
vc <- VarCorr(m1)$cond
out$gamma_glmmtmb <- list(fixef = as.list(setNames(cf[, 1], rownames(cf))),
                          se = as.list(setNames(cf[, 2], rownames(cf))),
                          sd = as.list(sapply(vc, function(v) attr(v, "stddev"))),
                          sigma = sigma(m1), logLik = as.numeric(logLik(m1)),
                          AIC = AIC(m1), BIC = BIC(m1))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
           "tests/data/glmer_reference.json")
