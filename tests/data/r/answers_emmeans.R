# References for tests/test_answers.py (emmeans, emtrends, Nakagawa R2) -> tests/data/answers_emmeans.json
# Run from tests/data: Rscript r/answers_emmeans.R
suppressPackageStartupMessages({library(lme4); library(emmeans); library(jsonlite); library(pbkrtest); library(lmerTest)})
tab <- function(x) { d <- as.data.frame(x); lapply(d, function(v) if (is.factor(v)) as.character(v) else v) }
out <- list(versions = list(emmeans = as.character(packageVersion("emmeans")),
                            lme4 = as.character(packageVersion("lme4"))))
ss <- read.csv("../../mixedformula/datasets/sleepstudy.csv")
ss$Subject <- factor(ss$Subject)
m1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss)
for (ddf in c("asymptotic", "satterthwaite", "kenward-roger")) {
  out$sleep[[ddf]]$emmeans <- tab(emmeans(m1, ~Days, at = list(Days = c(0, 4.5, 9)), lmer.df = ddf))
  out$sleep[[ddf]]$emtrends <- tab(emtrends(m1, ~1, var = "Days", lmer.df = ddf))
}
data(cake)
cake$tf <- as.character(cake$temp)
cake$rr <- paste(cake$recipe, cake$replicate, sep = ":")
write.csv(cake[, c("angle", "recipe", "tf", "temp", "rr")], "answers_cake.csv", row.names = FALSE)
ck <- read.csv("answers_cake.csv", colClasses = c(tf = "character"))
m2 <- lme4::lmer(angle ~ recipe * tf + (1 | rr), ck)
m3 <- lme4::lmer(angle ~ recipe * temp + (1 | rr), ck)
for (ddf in c("asymptotic", "satterthwaite", "kenward-roger")) {
  e <- emmeans(m2, ~recipe, lmer.df = ddf)
  out$cake[[ddf]]$emmeans <- tab(e)
  out$cake[[ddf]]$pairs_tukey <- tab(pairs(e, adjust = "tukey"))
  out$cake[[ddf]]$pairs_holm <- tab(pairs(e, adjust = "holm"))
  out$cake[[ddf]]$pairs_none <- tab(pairs(e, adjust = "none"))
  out$cake[[ddf]]$by <- tab(emmeans(m2, ~tf | recipe, lmer.df = ddf))
  et <- emtrends(m3, ~recipe, var = "temp", lmer.df = ddf)
  out$cake[[ddf]]$emtrends <- tab(et)
  out$cake[[ddf]]$emtrends_pairs <- tab(pairs(et, adjust = "tukey"))
}
# Nakagawa R2 by its published formula (Nakagawa, Johnson & Schielzeth 2017; random slopes as
# Johnson 2014: mean of diag(Z Sigma Z')), computed here from lme4's estimates
nak <- function(m) {
  vf <- var(as.vector(model.matrix(m) %*% fixef(m)))
  vc <- VarCorr(m)
  vr <- 0
  for (g in names(vc)) {
    S <- vc[[g]]
    Z <- model.matrix(m)[, colnames(S), drop = FALSE]
    vr <- vr + mean(rowSums((Z %*% S) * Z))
  }
  ve <- sigma(m)^2
  list(marginal = vf / (vf + vr + ve), conditional = (vf + vr) / (vf + vr + ve),
       var_fixed = vf, var_random = vr, var_residual = ve)
}
out$nakagawa$sleep <- nak(m1)
m4 <- lme4::lmer(Reaction ~ Days + (1 | Subject), ss)
out$nakagawa$sleep_intercept <- nak(m4)
if (requireNamespace("performance", quietly = TRUE)) {
  for (nm in c("sleep", "sleep_intercept")) {
    r <- performance::r2_nakagawa(if (nm == "sleep") m1 else m4)
    out$performance[[nm]] <- list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional),
                                  version = as.character(packageVersion("performance")))
  }
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "answers_emmeans.json")
