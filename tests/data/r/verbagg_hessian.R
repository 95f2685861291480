# How lme4 1.1-31 gets glmer's standard errors on VerbAgg, and how accurate that is
# (tests/test_glmer.py::test_verbagg_se_computation). Run from the repository root:
#   Rscript tests/data/r/verbagg_hessian.R      -> tests/data/verbagg_hessian.json
# lme4: vcov(fit) = 2 H^-1 (beta block), H = deriv12(devfun, c(theta, beta), delta = 1e-4) of the
# Laplace deviance (optinfo$derivs). Here the same H is recomputed, and compared with numDeriv's
# Richardson-extrapolated Hessian of the same devfun at the same point (steps 0.1|x|, r = 4),
# which is insensitive to the ~1e-9 noise of PIRLS-computed deviances that step 1e-4 amplifies.
suppressPackageStartupMessages({library(lme4); library(numDeriv); library(jsonlite)})
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                     optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
data(VerbAgg)
t0 <- proc.time()[["elapsed"]]
v1 <- glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, binomial,
            control = ctrl)
t_tight <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]
v0 <- glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, binomial)
t_default <- proc.time()[["elapsed"]] - t0
x <- c(getME(v1, "theta"), fixef(v1))
nth <- length(getME(v1, "theta"))
devfun <- update(v1, devFunOnly = TRUE)
se_of <- function(H) { V <- solve(H); V <- V[-(1:nth), -(1:nth)]; sqrt(diag(V + t(V))) }
H_stored <- v1@optinfo$derivs$Hessian
H_d12 <- lme4:::deriv12(devfun, x, delta = 1e-4)$Hessian
H_rich <- numDeriv::hessian(devfun, x)
out <- list(lme4_version = as.character(packageVersion("lme4")),
            x = unname(x), deviance = devfun(x),
            se_vcov = unname(sqrt(diag(as.matrix(vcov(v1))))),
            se_stored_hessian = unname(se_of(H_stored)),
            se_deriv12_again = unname(se_of(H_d12)),
            se_richardson = unname(se_of(H_rich)),
            seconds_glmer_tight = t_tight, seconds_glmer_default = t_default)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/verbagg_hessian.json")
