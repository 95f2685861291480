# lme4 1.1-31 references for tests/test_lmer_lme4_checks.py (issue 17, items 2 and 9).
# Run from the repository root:  Rscript tests/data/r/lme4_checks.R
# Writes tests/data/lme4_checks.json, tests/data/lme4_checks_data.csv (the small data sets of the
# refusal / warning / singular cases) and tests/data/orthodont.csv (nlme's Orthodont).
suppressMessages({library(lme4); library(nlme); library(minqa); library(jsonlite)})
out <- list(lme4_version = as.character(packageVersion("lme4")),
            R_version = R.version.string)

# ---- item 2: what lmer refuses or warns about --------------------------------------------------
set.seed(17)
n <- 20
d <- data.frame(y = round(rnorm(n), 4), x = round(rnorm(n), 4), x1 = round(rnorm(n), 4),
                x2 = round(rnorm(n), 4), x3 = round(rnorm(n), 4),
                g = rep(sprintf("g%02d", 1:10), each = 2), id = sprintf("r%02d", 1:n),
                one = "a", yc = 3)
write.csv(d, "tests/data/lme4_checks_data.csv", row.names = FALSE)

conditions <- function(expr) {
  warns <- character()
  res <- tryCatch(withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")}),
    error = function(e) structure(conditionMessage(e), class = "lmer_error"))
  list(result = res, warnings = warns)
}
refusals <- list(
  one_level      = "y ~ x + (1 | one)",
  level_per_row  = "y ~ x + (1 | id)",
  more_effects   = "y ~ 1 + (1 + x1 + x2 + x3 | g)",
  as_many_effects = "y ~ 1 + (1 + x1 | g)")
out$refusals <- lapply(refusals, function(f) {
  r <- conditions(lmer(as.formula(f), d))
  stopifnot(inherits(r$result, "lmer_error"))
  list(formula = f, error = unclass(r$result))
})
# accepted: fewer effects than observations (10 levels x 1 = 10 < 20)
ok <- lmer(y ~ x + (1 | g), d)
out$accepted <- list(formula = "y ~ x + (1 | g)", REMLcrit = REMLcrit(ok),
                     theta = as.list(getME(ok, "theta")), sigma = sigma(ok))

r <- conditions(lmer(yc ~ x + (1 | g), d))
fc <- r$result
vc <- conditions(vcov(fc))
out$constant_response <- list(
  formula = "yc ~ x + (1 | g)", warnings = r$warnings,
  REMLcrit = as.character(REMLcrit(fc)), sigma = sigma(fc), fixef = as.list(fixef(fc)),
  theta = as.list(getME(fc, "theta")), isSingular = isSingular(fc),
  vcov_warnings = vc$warnings,
  vcov_error = if (inherits(vc$result, "lmer_error")) unclass(vc$result) else NULL,
  vcov_all_na = if (inherits(vc$result, "lmer_error")) NULL else all(is.na(as.matrix(vc$result))))

# ---- item 9: 3 x 3 correlated REML fits ------------------------------------------------------
O <- as.data.frame(Orthodont)
write.csv(data.frame(distance = O$distance, age = O$age, Subject = as.character(O$Subject),
                     Sex = as.character(O$Sex)), "tests/data/orthodont.csv", row.names = FALSE)
data(sleepstudy, package = "lme4")

# lme4's optimisers and, as "best", a multi-start bobyqa -> Nelder-Mead -> bobyqa refinement of
# lme4's own REML deviance function (21 starts: lme4's T = I and 20 random perturbations).
# theta_spread / sdcor_spread: range of theta and of as.data.frame(VarCorr())$sdcor over the
# starts that end within 1e-6 of the best REML criterion (how well the optimum is defined).
best_theta <- function(form, dat) {
  dv <- lmer(form, dat, devFunOnly = TRUE)
  lw <- environment(dv)$lower
  th0 <- environment(dv)$pp$theta
  set.seed(1)
  starts <- c(list(th0), replicate(20, {s <- th0 + rnorm(length(th0)); s[lw == 0] <- abs(s[lw == 0]); s},
                                   simplify = FALSE))
  fits <- lapply(starts, function(s) {
    o <- bobyqa(s, dv, lower = lw, control = list(rhoend = 1e-10, maxfun = 1e5))
    o2 <- optim(o$par, dv, method = "Nelder-Mead", control = list(reltol = 1e-15, maxit = 1e5))
    o3 <- bobyqa(pmax(o2$par, lw), dv, lower = lw,
                 control = list(rhobeg = 1e-3, rhoend = 1e-12, maxfun = 1e5))
    list(fval = o3$fval, par = o3$par)
  })
  fv <- sapply(fits, `[[`, "fval")
  pars <- t(sapply(fits, `[[`, "par"))
  top <- fv - min(fv) < 1e-6
  # as.data.frame(VarCorr()) at each near-best theta (lmer evaluated at theta, no optimiser)
  vcs <- sapply(which(top), function(i) {
    f <- suppressMessages(suppressWarnings(lmer(form, dat, start = list(theta = pmax(pars[i, ], lw)),
                                                control = lmerControl(optimizer = NULL))))
    as.data.frame(VarCorr(f))$sdcor
  })
  list(theta = fits[[which.min(fv)]]$par, fvals = fv,
       n_within_1e6 = sum(top), theta_spread = apply(pars[top, , drop = FALSE], 2, function(v) diff(range(v))),
       sdcor_spread = apply(vcs, 1, function(v) diff(range(v))))
}
describe <- function(f) {
  vc <- as.data.frame(VarCorr(f))
  list(REMLcrit = REMLcrit(f), logLik = as.numeric(logLik(f)), isSingular = isSingular(f),
       theta = as.list(getME(f, "theta")), sigma = sigma(f),
       fixef = as.list(fixef(f)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(f))))),
       varcorr = lapply(seq_len(nrow(vc)), function(i)
         list(grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
              var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
              vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
       conv_messages = as.list(f@optinfo$conv$lme4$messages))
}
quad <- list(
  sleepstudy_quad = list(formula = "Reaction ~ Days + I(Days^2) + (Days + I(Days^2) | Subject)",
                         data = sleepstudy, data_name = "sleepstudy"),
  orthodont_quad = list(formula = "distance ~ age + I(age^2) + (age + I(age^2) | Subject)",
                        data = O, data_name = "orthodont"))
out$quad <- lapply(quad, function(m) {
  form <- as.formula(m$formula)
  per_opt <- lapply(c(nloptwrap = "nloptwrap", bobyqa = "bobyqa", Nelder_Mead = "Nelder_Mead"),
                    function(o) {
    f <- suppressWarnings(lmer(form, m$data, control = lmerControl(optimizer = o)))
    list(logLik = as.numeric(logLik(f)), isSingular = isSingular(f),
         conv_messages = as.list(f@optinfo$conv$lme4$messages))
  })
  b <- best_theta(form, m$data)
  # the lmerMod at the best theta (bobyqa from there with a tiny trust region)
  fb <- suppressWarnings(lmer(form, m$data, start = list(theta = b$theta),
              control = lmerControl(optimizer = "bobyqa",
                                    optCtrl = list(rhobeg = 1e-6, rhoend = 1e-12))))
  c(list(formula = m$formula, data = m$data_name, optimizers = per_opt,
         multistart = list(REMLcrit = b$fvals, n_within_1e6 = b$n_within_1e6,
                           theta_spread = as.list(setNames(b$theta_spread, names(getME(fb, "theta")))),
                           sdcor_spread = b$sdcor_spread)),
    list(best = describe(fb)))
})

# ---- a genuinely singular fit: zero slope variance -------------------------------------------
# y = 1 + 0.5 x + u_g + e, u_g ~ N(0, 1), e ~ N(0, 1) with its within-group trend in x removed,
# so every group's least-squares slope is exactly 0.5: the slopes vary less between groups than
# no slope variance at all would make them, and the slope variance is estimated as 0 (singular
# by construction, not by the luck of a seed). 12 groups x 8 rows.
set.seed(2024)
s <- data.frame(g = rep(sprintf("s%02d", 1:12), each = 8), x = rep(0:7, 12))
e <- rnorm(nrow(s))
e <- e - ave(e * (s$x - 3.5), s$g, FUN = sum) / sum((0:7 - 3.5)^2) * (s$x - 3.5)
s$y <- round(1 + 0.5 * s$x + rnorm(12)[as.integer(factor(s$g))] + e, 6)
write.csv(s, "tests/data/lme4_singular_slope.csv", row.names = FALSE)
fs <- lmer(y ~ x + (x | g), s)
out$singular_slope <- c(list(formula = "y ~ x + (x | g)"), describe(fs))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/data/lme4_checks.json")
