# Reference for residual structures in mf.lmer (issue 23, part 3): nlme::lme on Ovary.
# Run from tests/data:  Rscript r/residual_corr.R  -> ovary.csv, residual_corr_nlme.json
suppressMessages({library(nlme); library(jsonlite)})
d <- as.data.frame(Ovary)
d$Mare <- as.character(d$Mare)
d$s <- sin(2 * pi * d$Time); d$c <- cos(2 * pi * d$Time)
d$t <- ave(d$Time, d$Mare, FUN = function(v) rank(v))       # 1..n_j: the order in time
write.csv(d[, c("Mare", "Time", "t", "s", "c", "follicles")], "ovary.csv", row.names = FALSE)
one <- function(cor, method, random = ~ 1 | Mare) {
  m <- lme(follicles ~ s + c, data = d, random = random, correlation = cor, method = method)
  list(beta = unname(fixef(m)), sigma = m$sigma,
       sd_Mare = sqrt(as.numeric(getVarCov(m)[1, 1])),
       rho = unname(coef(m$modelStruct$corStruct, unconstrained = FALSE)),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"))
}
out <- list(
  ar1_reml = one(corAR1(form = ~ t | Mare), "REML"),
  ar1_ml = one(corAR1(form = ~ t | Mare), "ML"),
  # compound symmetry next to a random intercept is not identified (rho -> 0): random slope
  cs_reml = one(corCompSymm(form = ~ t | Mare), "REML", ~ s - 1 | Mare),
  cs_ml = one(corCompSymm(form = ~ t | Mare), "ML", ~ s - 1 | Mare),
  nlme = as.character(packageVersion("nlme")))
write(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "residual_corr_nlme.json")
