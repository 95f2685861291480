# Reference design matrices and fits from lme4 for tests/test_design_lme4.py (issue 17).
# Run from the repository root:  Rscript tests/data/r/design_reference.R
# Writes tests/data/design_data.csv (the data), tests/data/design_reference.json (fixed effects,
# column names, contrasts, error messages) and tests/data/design_<case>_X.csv / _Z.csv (lme4's
# X and Z with named columns; Z columns are named "<group>|<level>|<coefficient>").
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
out <- "tests/data"
set.seed(17)
n <- 40
d <- data.frame(
  g = rep(sprintf("g%d", 1:8), each = 5),
  x = round(rnorm(n, 1, 2), 3),
  f = sample(c("a", "b", "c"), n, replace = TRUE),
  o = sample(c("vlow", "low", "mid", "high", "top"), n, replace = TRUE),
  b = sample(c(TRUE, FALSE), n, replace = TRUE),
  one = "a",
  stringsAsFactors = FALSE)
d$y <- round(1 + 0.5 * d$x + 0.3 * d$x^2 + rep(rnorm(8), each = 5) + rnorm(n), 3)
d$y[c(3, 7, 8, 12, 19, 22, 27, 31, 36, 40)] <- NA     # 10 of 40 responses missing
write.csv(d, file.path(out, "design_data.csv"), row.names = FALSE, na = "")
o_levels <- c("vlow", "low", "mid", "high", "top")
rdata <- function() {
  r <- read.csv(file.path(out, "design_data.csv"), stringsAsFactors = FALSE)
  r$o <- factor(r$o, levels = o_levels, ordered = TRUE)
  r$b <- as.logical(r$b)
  r
}
dd <- rdata()

zmat <- function(fit) {
  Z <- t(as.matrix(getME(fit, "Zt")))
  cnms <- getME(fit, "cnms"); fl <- getME(fit, "flist")
  nm <- character(0)
  for (i in seq_along(cnms)) {
    grp <- names(fl)[attr(fl, "assign")[i]]     # the grouping factor (cnms says "g.1")
    levs <- levels(fl[[grp]])
    nm <- c(nm, as.vector(t(outer(levs, cnms[[i]], function(l, c) paste(grp, l, c, sep = "|")))))
  }
  colnames(Z) <- nm
  Z
}

cases <- list(
  scale_na = "y ~ scale(x) + (1 | g)",
  poly_na = "y ~ poly(x, 2) + (1 | g)",
  ordered = "y ~ o + (1 | g)",
  logical = "y ~ b + x + (1 | g)",
  mixed = "y ~ o * x + f + b + (1 + x | g) + (1 | f)",
  mixed_uncorr = "y ~ x + f + (1 + x || g) + (0 + f | g)"
)
ref <- list(lme4 = as.character(packageVersion("lme4")), R = R.version.string,
            n = n, o_levels = o_levels)
for (nm in names(cases)) {
  fit <- lmer(as.formula(cases[[nm]]), data = dd, REML = TRUE)
  X <- getME(fit, "X")
  write.csv(X, file.path(out, sprintf("design_%s_X.csv", nm)), row.names = FALSE)
  write.csv(zmat(fit), file.path(out, sprintf("design_%s_Z.csv", nm)), row.names = FALSE)
  ref[[nm]] <- list(formula = cases[[nm]], nobs = nobs(fit), X_names = colnames(X),
                    fixef = as.list(fixef(fit)), logLik = as.numeric(logLik(fit)),
                    rows = as.integer(rownames(model.frame(fit))))
}
# contr.poly as model.matrix writes it (names and values) for 5 levels
cp <- contr.poly(5)
ref$contr_poly <- list(names = colnames(model.matrix(~ o, dd))[-1],
                       matrix = unname(split(cp, row(cp))))
# scale() as the model frame computes it: over all 40 rows (before na.omit drops 10)
ref$scale_center <- mean(dd$x); ref$scale_sd <- sd(dd$x)
# a one-level factor predictor
ref$one_level_error <- tryCatch({lmer(y ~ x + one + (1 | g), data = dd); "no error"},
                                error = function(e) conditionMessage(e))
write_json(ref, file.path(out, "design_reference.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE)
