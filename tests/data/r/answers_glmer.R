# References for tests/test_answers_glmer.py and tests/test_report_point.py:
#  * emmeans 1.8.x on glmer fits (type = "response" and pairs), performance::r2_nakagawa for
#    binomial-logit and Poisson glmer fits;
#  * marginaleffects' semantics for glmer comparisons/slopes computed by hand (unit-level
#    differences of predict(type = "response") at the conditional modes, averaged; delta-method
#    SE from the exact Jacobian with respect to the fixed effects and vcov());
#  * lme4's conditional variances attr(ranef(m, condVar = TRUE)[[g]], "postVar").
# Run from tests/data:  Rscript r/answers_glmer.R   -> answers_glmer.json
suppressPackageStartupMessages({library(lme4); library(emmeans); library(jsonlite);
  library(performance); library(lmerTest)})
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                     optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
tab <- function(x) { d <- as.data.frame(x); lapply(d, function(v) if (is.factor(v)) as.character(v) else v) }
out <- list(versions = list(lme4 = as.character(packageVersion("lme4")),
                            emmeans = as.character(packageVersion("emmeans")),
                            performance = as.character(packageVersion("performance")),
                            insight = as.character(packageVersion("insight"))))
slices <- function(pv) lapply(seq_len(dim(pv)[3]), function(j) unname(pv[, , j, drop = TRUE]))
postvar <- function(m) lapply(ranef(m, condVar = TRUE), function(r) {
  pv <- attr(r, "postVar")     # q x q x J; several terms of one factor: a list of arrays, one per term
  list(levels = rownames(r), coefs = colnames(r), modes = lapply(as.list(r), unname),
       postVar = if (is.list(pv)) lapply(pv, slices) else slices(pv))
})
# delta method by hand: estimate = mean over rows of (mu(hi) - mu(lo)), mu = g^-1(X beta + Z b)
avg_diff <- function(m, X_lo, X_hi, zb, dmu, inv) {
  b <- fixef(m); V <- as.matrix(vcov(m))
  e_lo <- drop(X_lo %*% b) + zb; e_hi <- drop(X_hi %*% b) + zb
  est <- mean(inv(e_hi) - inv(e_lo))
  J <- colMeans(dmu(e_hi) * X_hi - dmu(e_lo) * X_lo)
  list(estimate = est, std.error = sqrt(drop(t(J) %*% V %*% J)), jacobian = unname(J))
}

# ---- cbpp: binomial logit with trials
data(cbpp)
f1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = ctrl)
out$cbpp$fixef <- unname(fixef(f1)); out$cbpp$theta <- unname(getME(f1, "theta"))
out$cbpp$condvar <- postvar(f1)
e <- emmeans(f1, ~period, type = "response")
out$cbpp$emmeans_response <- tab(e)
out$cbpp$pairs_response <- tab(pairs(e))
out$cbpp$pairs_response_none <- tab(pairs(e, adjust = "none"))
el <- emmeans(f1, ~period)
out$cbpp$emmeans_link <- tab(el)
out$cbpp$pairs_link <- tab(pairs(el))
r <- r2_nakagawa(f1)
out$cbpp$r2 <- list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
out$cbpp$confint_wald <- unname(as.matrix(confint(f1, method = "Wald")))
X <- model.matrix(f1); zb <- drop(predict(f1, type = "link") - X %*% fixef(f1))
Xp <- function(lev) { d <- cbpp; d$period <- factor(lev, levels = levels(cbpp$period));
  model.matrix(~period, d) }
logis <- function(e) plogis(e); dlogis_ <- function(e) dlogis(e)
out$cbpp$comparisons <- lapply(list(c("1", "2"), c("1", "3"), c("1", "4"), c("2", "3"),
                                    c("2", "4"), c("3", "4")), function(p)
  c(list(contrast = paste(p[2], "-", p[1])), avg_diff(f1, Xp(p[1]), Xp(p[2]), zb, dlogis_, logis)))
# population level (re.form = NA): zb = 0
out$cbpp$comparisons_population <- lapply(list(c("1", "2")), function(p)
  c(list(contrast = paste(p[2], "-", p[1])), avg_diff(f1, Xp(p[1]), Xp(p[2]), 0 * zb, dlogis_, logis)))

# ---- epil (MASS): Poisson log
epil <- read.csv("glmer_epil.csv"); epil$subject <- factor(epil$subject)
epil$trt <- factor(epil$trt, levels = c("placebo", "progabide"))
p1 <- glmer(y ~ lbase * trt + lage + V4 + (1 | subject), epil, poisson, control = ctrl)
out$epil$fixef <- unname(fixef(p1)); out$epil$theta <- unname(getME(p1, "theta"))
e <- emmeans(p1, ~trt, type = "response")
out$epil$emmeans_response <- tab(e)
out$epil$pairs_response <- tab(pairs(e))
out$epil$emmeans_link <- tab(emmeans(p1, ~trt))
out$epil$emtrends_lage <- tab(emtrends(p1, ~trt, var = "lage"))
r <- r2_nakagawa(p1)
out$epil$r2 <- list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
out$epil$condvar <- postvar(p1)
# an offset in the formula: the null model keeps it (insight's null_model)
p2 <- glmer(y ~ trt + lage + V4 + offset(lbase) + (1 | subject), epil, poisson, control = ctrl)
r <- r2_nakagawa(p2)
out$epil_offset$r2 <- list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
X <- model.matrix(p1); zb <- drop(predict(p1, type = "link") - X %*% fixef(p1))
mm <- function(d) model.matrix(~lbase * trt + lage + V4, d)
setv <- function(v, val) { d <- epil; d[[v]] <- val; d }
# slope of lage and lbase: the exact derivative d mu / dx = mu * d eta / dx (the centred
# difference of marginaleffects equals it to O(h^2))
slope <- function(v) {
  b <- fixef(p1); V <- as.matrix(vcov(p1))
  eta <- drop(X %*% b) + zb; mu <- exp(eta)
  dX <- (mm(setv(v, epil[[v]] + 1)) - mm(epil))     # d x_row / d v (linear in v)
  deta <- drop(dX %*% b)
  est <- mean(mu * deta)
  J <- colMeans(mu * deta * X + mu * dX)
  list(term = v, estimate = est, std.error = sqrt(drop(t(J) %*% V %*% J)))
}
out$epil$slopes <- list(slope("lage"), slope("lbase"))
out$epil$comparisons_trt <- c(list(contrast = "progabide - placebo"),
  avg_diff(p1, mm(setv("trt", factor("placebo", levels(epil$trt)))),
           mm(setv("trt", factor("progabide", levels(epil$trt)))), zb, exp, exp))
out$epil$comparisons_lage_plus1 <- c(list(contrast = "+1"),
  avg_diff(p1, mm(epil), mm(setv("lage", epil$lage + 1)), zb, exp, exp))

# ---- lmer sleepstudy: conditional variances and the report's tables
ss <- read.csv("../../mixedformula/datasets/sleepstudy.csv"); ss$Subject <- factor(ss$Subject)
# tight optimiser tolerances: lme4's defaults stop ~1e-6 (relative) short of the optimum in theta
lctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
m1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss, control = lctrl)
out$sleep$condvar <- postvar(m1)
m2 <- lme4::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), ss, control = lctrl)
out$sleep_uncorr$condvar <- postvar(m2)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "answers_glmer.json")
