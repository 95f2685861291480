# Data of the GLMMs in lme4's and brms' documentation, exported for the parametrisation check
# and the convergence-warning tests (issue 17 item 11).  Regenerate from the project root with
#   Rscript tests/data/r/glmm_datasets.R
# grouseticks, cbpp: lme4's data sets.  epilepsy: brms' `epilepsy` is Thall & Vail's seizure
# counts, MASS::epil here (brms not installed): count = y, Trt = 1 for progabide,
# zAge / zBase = standardised age and baseline count, patient = subject, visit = period.
library(lme4)
library(MASS)
out <- "tests/data"
write.csv(grouseticks[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION")],
          file.path(out, "grouseticks.csv"), row.names = FALSE)
write.csv(cbpp, file.path(out, "cbpp.csv"), row.names = FALSE)
ep <- data.frame(count = epil$y, Trt = as.integer(epil$trt == "progabide"),
                 zAge = as.numeric(scale(epil$age)), zBase = as.numeric(scale(epil$base)),
                 patient = epil$subject, visit = epil$period)
write.csv(ep, file.path(out, "epilepsy.csv"), row.names = FALSE)
