# lme4 references for tests/test_crossed_reml.py and benchmarks/crossed_reml.py (issue 24).
# Data: tests/data/kb07_like.csv (56 subj x 32 items, 2x2x2 within design, 1792 rows) and
# tests/data/kb07_small.csv (24 x 16, 2x2 design), both written by benchmarks/kb07_like.py.
# Run from the repository root:
#   Rscript tests/data/r/kb07_reference.R CASE [optimizer ...]
# CASE in small_maximal, small_zerocorr, zerocorr, maximal; optimizers among bobyqa,
# Nelder_Mead, nloptwrap (NLOPT_LN_BOBYQA, lme4's default), nloptwrap_NM (NLOPT_LN_NELDERMEAD),
# nlminbwrap. Writes tests/data/kb07_reference_CASE.json: per optimizer logLik, theta, fixef,
# sigma, isSingular, elapsed seconds; "best" is the optimizer with the largest logLik
# (allFit-style).
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
case <- args[1]
opts <- if (length(args) > 1) args[-1] else c("bobyqa", "Nelder_Mead", "nloptwrap", "nloptwrap_NM", "nlminbwrap")
forms <- list(
  small_maximal  = "rt ~ 1 + spkr * prec + (1 + spkr * prec | subj) + (1 + spkr * prec | item)",
  small_zerocorr = "rt ~ 1 + spkr * prec + (1 + spkr * prec || subj) + (1 + spkr * prec || item)",
  zerocorr = "rt ~ 1 + spkr * prec * load + (1 + spkr * prec * load || subj) + (1 + spkr * prec * load || item)",
  maximal  = "rt ~ 1 + spkr * prec * load + (1 + spkr * prec * load | subj) + (1 + spkr * prec * load | item)")
file <- if (startsWith(case, "small")) "tests/data/kb07_small.csv" else "tests/data/kb07_like.csv"
d <- read.csv(file)
f <- as.formula(forms[[case]])
ctrl <- function(o) {
  if (o == "nloptwrap_NM") return(lmerControl(optimizer = "nloptwrap",
                                              optCtrl = list(algorithm = "NLOPT_LN_NELDERMEAD")))
  lmerControl(optimizer = o)
}
runs <- list()
for (o in opts) {
  t0 <- proc.time()[["elapsed"]]
  fit <- lmer(f, d, REML = FALSE, control = ctrl(o))
  el <- proc.time()[["elapsed"]] - t0
  vc <- as.data.frame(VarCorr(fit))
  runs[[o]] <- list(optimizer = o, logLik = as.numeric(logLik(fit)), elapsed = el,
                    theta = as.list(getME(fit, "theta")), fixef = as.list(fixef(fit)),
                    sigma = sigma(fit), isSingular = isSingular(fit),
                    messages = as.list(fit@optinfo$conv$lme4$messages),
                    feval = fit@optinfo$feval,
                    varcorr = vc)
  cat(o, format(as.numeric(logLik(fit)), digits = 12), el, "s\n")
  # written after every optimiser (the maximal model takes ~11 min per optimiser)
  ll <- sapply(runs, function(r) r$logLik)
  out <- list(case = case, formula = forms[[case]], data = basename(file), method = "ML",
              lme4_version = as.character(packageVersion("lme4")), R_version = R.version.string,
              nobs = nrow(d), best = names(runs)[which.max(ll)], runs = runs)
  write(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
        sprintf("tests/data/kb07_reference_%s.json", case))
}
