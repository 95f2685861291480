# lme4 1.1-31 / lmerTest references for the second part of issue 20 (tests/test_freq_extras.py):
# prior weights in lmer / glmer, glmer confint (Wald, profile), type II anova (lmerTest).
# Run from the repository root:  Rscript tests/data/r/freq_reference.R
# Writes tests/data/freq_reference.json and tests/data/weights_sleepstudy.csv,
# tests/data/weights_grouse.csv (the data with the simulated weights).
suppressMessages({library(lme4); library(lmerTest); library(jsonlite)})
out <- list(lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")),
            R_version = R.version.string)
tab <- function(m) {
  m <- as.data.frame(m, check.names = FALSE)
  list(rows = rownames(m), columns = as.list(m))
}
tight <- lmerControl(optCtrl = list(ftol_abs = 1e-12, ftol_rel = 1e-14, xtol_abs = 1e-12,
                                    xtol_rel = 1e-12, maxeval = 1e5))
lfit <- function(m) list(theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
                         se = unname(sqrt(diag(as.matrix(vcov(m))))), sigma = sigma(m),
                         logLik = as.numeric(logLik(m)), deviance = as.numeric(deviance(m, REML = FALSE)),
                         REMLcrit = if (isREML(m)) REMLcrit(m) else NA,
                         nobs = nobs(m), df_resid = df.residual(m),
                         AIC = AIC(m))

# ---- lmer with prior weights: Var(e_i) = sigma^2 / w_i ------------------------------------------
data(sleepstudy, package = "lme4")
set.seed(20)
ss <- sleepstudy
ss$w <- round(runif(nrow(ss), 0.2, 3), 3)
ss$w0 <- ss$w
ss$w0[c(3, 50, 100)] <- 0
write.csv(ss, "tests/data/weights_sleepstudy.csv", row.names = FALSE)
f <- Reaction ~ Days + (Days | Subject)
mw <- lme4::lmer(f, ss, weights = w, control = tight)
mwml <- lme4::lmer(f, ss, weights = w, REML = FALSE, control = tight)
out$lmer_w <- list(formula = "Reaction ~ Days + (Days | Subject)", reml = lfit(mw), ml = lfit(mwml),
                   pearson = unname(residuals(mw, type = "pearson")))
mw0 <- tryCatch(lfit(lme4::lmer(f, ss, weights = w0, control = tight)),
                error = function(e) list(error = conditionMessage(e)))
out$lmer_w0 <- mw0
# crossed terms with weights
mwi <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss, weights = w, control = tight)
out$lmer_w_int <- list(formula = "Reaction ~ Days + (1 | Subject)", reml = lfit(mwi))

# ---- glmer: cbind(successes, failures) vs proportion + weights = trials on cbpp ------------------
gtight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
gfit <- function(m) list(theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
                         se = unname(sqrt(diag(as.matrix(vcov(m))))),
                         logLik = as.numeric(logLik(m)), deviance = deviance(m),
                         AIC = AIC(m), nobs = nobs(m))
data(cbpp, package = "lme4")
gc <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
            control = gtight)
cbpp$prop <- cbpp$incidence / cbpp$size
gp <- glmer(prop ~ period + (1 | herd), cbpp, binomial, weights = size, control = gtight)
out$cbpp_cbind <- gfit(gc)
out$cbpp_prop <- gfit(gp)
# ---- glmer confint on cbpp (Wald and profile) -------------------------------------------------
out$cbpp_confint <- list(
  wald = tab(confint(gc, method = "Wald", oldNames = TRUE)),
  profile = tab(confint(gc, method = "profile", oldNames = TRUE)))

# ---- Poisson with prior weights (grouseticks) ------------------------------------------------
data(grouseticks, package = "lme4")
gt <- grouseticks
set.seed(21)
gt$w <- round(runif(nrow(gt), 0.5, 2), 2)
gt$w0 <- gt$w
gt$w0[c(2, 40, 41, 200)] <- 0
write.csv(gt, "tests/data/weights_grouse.csv", row.names = FALSE)
gpw <- glmer(TICKS ~ YEAR + (1 | BROOD), gt, poisson, weights = w, control = gtight)
out$grouse_w <- c(list(formula = "TICKS ~ YEAR + (1 | BROOD)"), gfit(gpw))
# zero prior weights: the rows stay (nobs counts them), contributing nothing to the likelihood
gpw0 <- glmer(TICKS ~ YEAR + (1 | BROOD), gt, poisson, weights = w0, control = gtight)
out$grouse_w0 <- c(gfit(gpw0), list(df_resid = df.residual(gpw0)))

# ---- type II anova (lmerTest) ------------------------------------------------------------------
data(ham, package = "lmerTest")
m <- lmerTest::lmer(Informed.liking ~ Product*Information*Gender + (1 | Consumer) +
                      (1 | Consumer:Product), data = ham)
m2 <- lmerTest::lmer(Informed.liking ~ Product*Age + (1 | Consumer), data = ham)
fm1 <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
sleep2 <- sleepstudy
sleep2$long <- factor(sleep2$Days > 4)
fm2 <- lmerTest::lmer(Reaction ~ Days * long + (Days | Subject), sleep2)
out$anova2 <- list(
  ham_satt = tab(anova(m, type = 2)),
  ham_kr = tab(anova(m, type = 2, ddf = "Kenward-Roger")),
  ham_age_satt = tab(anova(m2, type = 2)),
  ham_age_kr = tab(anova(m2, type = 2, ddf = "Kenward-Roger")),
  sleep_satt = tab(anova(fm1, type = 2)),
  sleep_long_satt = tab(anova(fm2, type = 2)),
  sleep_long_kr = tab(anova(fm2, type = 2, ddf = "Kenward-Roger")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/freq_reference.json")
