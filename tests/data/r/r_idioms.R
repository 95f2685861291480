# Reference model matrices for R idioms in formulas (tests/test_r_idioms.py).
# Regenerate: cd tests/data && Rscript r/r_idioms.R
suppressPackageStartupMessages({library(splines); library(lme4); library(jsonlite)})
set.seed(20261201)
n <- 40
d <- data.frame(x = round(rexp(n) * 3, 4), c = sample(c(10, 2, 3, 25), n, replace = TRUE),
                y = rnorm(n))
newd <- data.frame(x = c(-1, 0.5, 2, 30), c = c(2, 3, 10, 25), y = 0)
write.csv(d, "r_idioms_data.csv", row.names = FALSE)
write.csv(newd, "r_idioms_new.csv", row.names = FALSE)
formulas <- c("y ~ poly(x, 2, raw = TRUE)", "y ~ I(x^2) + I(x/2)", "y ~ factor(c)",
              "y ~ as.factor(c) + as.numeric(x) + as.integer(3 * x)", "y ~ ns(x, 3)",
              "y ~ ns(x, df = 5)", "y ~ splines::ns(x, 4)", "y ~ ns(x)", "y ~ bs(x, df = 5)",
              "y ~ bs(x, df = 4, degree = 2)", "y ~ bs(x, 3)", "y ~ stats::poly(x, 3)")
out <- list()
for (f in formulas) {
  fit <- lm(as.formula(f), d)
  tt <- delete.response(terms(fit))
  X <- model.matrix(fit)
  Xnew <- model.matrix(tt, model.frame(tt, newd))
  out[[f]] <- list(names = colnames(X), X = unname(X), Xnew = unname(Xnew))
}
sleep <- lme4::sleepstudy
fit <- lmer(Reaction ~ Days + I(Days^2) + (1 | Subject), sleep)
out[["lmer"]] <- list(formula = "Reaction ~ Days + I(Days^2) + (1 | Subject)",
                      names = names(fixef(fit)), fixef = unname(fixef(fit)))
writeLines(toJSON(out, digits = 17, matrix = "rowmajor"), "r_idioms_reference.json")
