# Reference for ar()/cosy() residuals in mf.lmer (issue 23): nlme::lme on BodyWeight
# (Pinheiro & Bates 2000, ch. 5: weight ~ Time * Diet, random = ~ Time | Rat).
# Run from tests/data:  Rscript r/bodyweight_nlme.R  -> bodyweight.csv, bodyweight_nlme.json
#
# BodyWeight's Time is unequally spaced (1, 8, 15, 22, 29, 36, 43, 44, 50, 57, 64). brms' ar()
# (and mf.lmer's) uses the order of the time points within a rat (a gap counts as one step):
# that is nlme's corAR1 on the rank t = 1..11 of Time within Rat. corAR1(form = ~ Time | Rat)
# (nlme turns it into corARMA(p = 1) on the day distances) and corCAR1 are time-distance
# AR(1) models, a different likelihood (stored below as *_time_distance for the record).
suppressMessages({library(nlme); library(jsonlite)})
d <- as.data.frame(BodyWeight)
d$Rat <- as.character(d$Rat); d$Diet <- as.character(d$Diet)
d$t <- ave(d$Time, d$Rat, FUN = function(v) rank(v))       # 1..11: the order in time
write.csv(d[, c("Rat", "Diet", "Time", "t", "weight")], "bodyweight.csv", row.names = FALSE)
one <- function(cor, method, random = ~ Time | Rat) {
  m <- lme(weight ~ Time * Diet, data = d, random = random, correlation = cor, method = method)
  vc <- getVarCov(m)
  sds <- sqrt(diag(vc))
  list(beta = unname(fixef(m)), beta_names = names(fixef(m)), sigma = m$sigma,
       sd_Rat = unname(sds),
       cor_Rat = if (nrow(vc) > 1) vc[1, 2] / prod(sds) else NULL,
       rho = unname(coef(m$modelStruct$corStruct, unconstrained = FALSE)),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
       fitted = unname(fitted(m, level = 0:1)[1:5, 2]))
}
out <- list(
  ar1_reml = one(corAR1(form = ~ t | Rat), "REML"),
  ar1_ml = one(corAR1(form = ~ t | Rat), "ML"),
  # next to (Time | Rat) compound symmetry sits on its bound rho = 0 (the random intercept
  # takes its place): with a random slope only, rho is interior
  cs_reml = one(corCompSymm(form = ~ t | Rat), "REML", ~ 0 + Time | Rat),
  cs_ml = one(corCompSymm(form = ~ t | Rat), "ML", ~ 0 + Time | Rat),
  ar1_time_distance_reml = one(corAR1(form = ~ Time | Rat), "REML"),
  car1_reml = one(corCAR1(form = ~ Time | Rat), "REML"),
  nlme = as.character(packageVersion("nlme")))
write(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "bodyweight_nlme.json")
