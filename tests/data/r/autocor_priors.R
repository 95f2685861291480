# brms 2.18 prior rows of the ar / cosy classes: defaults (get_prior) and user priors
# (validate_prior, which shows the rows prior_summary() of a fit would print).
# Run from tests/data:  Rscript r/autocor_priors.R  -> autocor_priors_brms.json
suppressMessages({library(brms); library(jsonlite)})
set.seed(1)
d <- data.frame(x = rnorm(30), g = rep(paste0("s", 1:6), each = 5), time = rep(1:5, 6))
d$y <- 1 + 0.5 * d$x + rnorm(30)
keep <- function(p) {
  p <- as.data.frame(p)
  p <- p[p$class %in% c("ar", "cosy"), c("prior", "class", "coef", "group", "lb", "ub", "source")]
  rownames(p) <- NULL
  p
}
out <- list(
  ar_default = keep(get_prior(y ~ x + ar(time, g, p = 2), data = d)),
  cosy_default = keep(get_prior(y ~ x + cosy(time, g), data = d)),
  ar_user = keep(validate_prior(set_prior("normal(0, 0.5)", class = "ar"),
                                y ~ x + ar(time, g, p = 2), data = d)),
  cosy_user = keep(validate_prior(set_prior("beta(2, 2)", class = "cosy"),
                                  y ~ x + cosy(time, g), data = d)),
  brms = as.character(packageVersion("brms")))
write(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "autocor_priors_brms.json")
