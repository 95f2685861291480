# lme4 1.1-31 / lmerTest 3.1-3 / pbkrtest 0.5.2 references for tests/test_lmer_inference.py (issue 20).
# Run from the repository root:  Rscript tests/data/r/lmer_inference.R
# Writes tests/data/lmer_inference.json and tests/data/ham.csv (lmerTest's ham data).
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
out <- list(lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")),
            pbkrtest_version = as.character(packageVersion("pbkrtest")),
            R_version = R.version.string)
tab <- function(m) {
  m <- as.data.frame(m, check.names = FALSE)
  list(rows = rownames(m), columns = as.list(m))
}
data(sleepstudy, package = "lme4")
data(ham, package = "lmerTest")
write.csv(ham, "tests/data/ham.csv", row.names = FALSE)

# ---- sleepstudy: coefficient tables, anova, confint ------------------------------------------
fm1 <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
out$sleep <- list(
  formula = "Reaction ~ Days + (Days | Subject)",
  satterthwaite = tab(summary(fm1, ddf = "Satterthwaite")$coefficients),
  kenward_roger = tab(summary(fm1, ddf = "Kenward-Roger")$coefficients),
  none = tab(summary(fm1, ddf = "lme4")$coefficients),
  vcov_varpar = fm1@vcov_varpar,
  vcov_adj = as.matrix(vcovAdj(as(fm1, "lmerMod"))),
  anova3_satt = tab(anova(fm1, type = 3)),
  anova3_kr = tab(anova(fm1, type = 3, ddf = "Kenward-Roger")),
  confint_profile = tab(confint(as(fm1, "lmerMod"), method = "profile", oldNames = TRUE)),
  confint_wald = tab(confint(as(fm1, "lmerMod"), method = "Wald", oldNames = TRUE)),
  confint_profile_90 = tab(confint(as(fm1, "lmerMod"), method = "profile", level = 0.9,
                                   oldNames = TRUE)))
# uncorrelated (||) terms: lme4 splits them into one term per coefficient
fmu <- lmerTest::lmer(Reaction ~ Days + (Days || Subject), sleepstudy)
out$sleep_uncorr <- list(
  formula = "Reaction ~ Days + (Days || Subject)",
  satterthwaite = tab(summary(fmu)$coefficients),
  kenward_roger = tab(summary(fmu, ddf = "Kenward-Roger")$coefficients),
  confint_profile = tab(confint(as(fmu, "lmerMod"), method = "profile", oldNames = TRUE)))
# a singular fit (slope variance 0; tests/data/lme4_singular_slope.csv from lme4_checks.R)
ds <- read.csv("tests/data/lme4_singular_slope.csv")
fms <- suppressMessages(lmerTest::lmer(y ~ x + (x | g), ds))
out$singular <- list(formula = "y ~ x + (x | g)",
                     satterthwaite = tab(summary(fms)$coefficients),
                     kenward_roger = tab(summary(fms, ddf = "Kenward-Roger")$coefficients),
                     anova3_satt = tab(anova(fms)))
# ML fit: Satterthwaite works on ML fits too
fm1ml <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
out$sleep_ml <- list(satterthwaite = tab(summary(fm1ml)$coefficients),
                     confint_profile = tab(confint(as(fm1ml, "lmerMod"), method = "profile",
                                                   oldNames = TRUE)))

# ---- likelihood-ratio test of nested models (REML fits refitted with ML) ------------------------
fm0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
fm1l <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
fmq <- lme4::lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleepstudy)
msg <- character()
a <- withCallingHandlers(anova(fm0, fm1l, fmq),
                         message = function(m) {msg <<- c(msg, conditionMessage(m))
                                                invokeRestart("muffleMessage")})
out$lrt <- list(formulas = c("Reaction ~ Days + (1 | Subject)",
                             "Reaction ~ Days + (Days | Subject)",
                             "Reaction ~ Days + I(Days^2) + (Days | Subject)"),
                table = tab(a), message = msg)

# ---- ham (lmerTest's anova example): three-way interaction, two random terms ------------------
m <- lmerTest::lmer(Informed.liking ~ Product*Information*Gender + (1 | Consumer) +
                      (1 | Consumer:Product), data = ham)
out$ham <- list(
  formula = "Informed.liking ~ Product*Information*Gender + (1 | Consumer) + (1 | Consumer:Product)",
  satterthwaite = tab(summary(m)$coefficients),
  kenward_roger = tab(summary(m, ddf = "Kenward-Roger")$coefficients),
  anova3_satt = tab(anova(m, type = 3)),
  anova3_kr = tab(anova(m, type = 3, ddf = "Kenward-Roger")),
  anova1_satt = tab(anova(m, type = 1)),
  anova1_kr = tab(anova(m, type = 1, ddf = "Kenward-Roger")))
# a numeric covariate interacting with a factor (type III contrasts with a covariate)
m2 <- lmerTest::lmer(Informed.liking ~ Product*Age + (1 | Consumer), data = ham)
out$ham_age <- list(
  formula = "Informed.liking ~ Product*Age + (1 | Consumer)",
  satterthwaite = tab(summary(m2)$coefficients),
  anova3_satt = tab(anova(m2, type = 3)),
  anova3_kr = tab(anova(m2, type = 3, ddf = "Kenward-Roger")),
  anova1_satt = tab(anova(m2, type = 1)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/lmer_inference.json")
