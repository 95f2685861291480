# brms 2.18 reference for mixedformula's ordinal `disc ~` formula (issue 19).
# Run: Rscript tests/data/r/brms_ordinal_disc.R  (writes tests/data/brms_ordinal_disc.json;
# reads tests/data/inhaler.csv, written by brms_ordinal.R from brms' `inhaler`).
suppressMessages({library(brms); library(jsonlite); library(posterior)})
out_json <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else
  "tests/data/brms_ordinal_disc.json"
inhaler <- read.csv(file.path(dirname(out_json), "inhaler.csv"))
f <- bf(rating ~ treat + period + carry + (1 | subject), disc ~ treat)
fit <- brm(f, data = inhaler, family = cumulative("logit"), chains = 4, iter = 2000,
           warmup = 1000, cores = 1, seed = 1, refresh = 0)
d <- as_draws_df(fit)
keep <- grep("^(b_|sd_)", names(d), value = TRUE)
dd <- as.data.frame(d)[keep]
ps <- prior_summary(fit)
rows <- c(1, 100, 300, 400, 560)
ep <- posterior_epred(fit, newdata = inhaler[rows, ])      # S x N x K
res <- list(inhaler_cumulative_disc = list(
  formula = "bf(rating ~ treat + period + carry + (1 | subject), disc ~ treat)",
  mean = as.list(colMeans(dd)), sd = as.list(sapply(dd, sd)),
  ess_bulk = as.list(sapply(dd, ess_bulk)), ndraws = nrow(d),
  prior = data.frame(prior = ps$prior, class = ps$class, coef = ps$coef, group = ps$group,
                     dpar = ps$dpar),
  epred_rows = rows, epred_mean = apply(ep, c(2, 3), mean), epred_sd = apply(ep, c(2, 3), sd),
  stancode_disc = grep("disc", strsplit(stancode(fit), "\n")[[1]], value = TRUE)))
write(toJSON(res, auto_unbox = TRUE, digits = 10, pretty = TRUE), out_json)
