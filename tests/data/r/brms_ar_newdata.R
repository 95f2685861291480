# What brms 2.18 does with newdata in an ar() model (issue 23): posterior_epred /
# posterior_linpred for new rows, with and without their response.
# Run from tests/data:  Rscript r/brms_ar_newdata.R  -> brms_ar_newdata.json
suppressMessages({library(brms); library(jsonlite)})
set.seed(7)
G <- 6; Tn <- 8
d <- data.frame(g = rep(paste0("g", 1:G), each = Tn), time = rep(1:Tn, G))
d$x <- rnorm(nrow(d))
e <- unlist(lapply(1:G, function(j) as.numeric(arima.sim(list(ar = 0.6), Tn, sd = 0.5))))
d$y <- 1 + 0.5 * d$x + e
fit <- brm(y ~ x + ar(time, g, p = 1), data = d, chains = 1, iter = 600, warmup = 300,
           seed = 11, refresh = 0,
           prior = c(set_prior("normal(0, 5)", class = "b"),
                     set_prior("normal(0, 5)", class = "Intercept"),
                     set_prior("normal(0, 1)", class = "sigma")))
# new rows: the continuation of g1 (times 9, 10), a new series 'new' (times 1..3, shuffled
# row order), an existing series given at times 2 and 5 only (a gap)
nd <- data.frame(g = c("g1", "g1", "new", "new", "new", "g2", "g2"),
                 time = c(9, 10, 3, 1, 2, 2, 5),
                 x = c(0.3, -0.2, 1.0, 0.0, -1.0, 0.5, 0.1),
                 y = c(1.5, 0.8, 2.0, 0.7, 0.1, 1.2, 0.9))
dr <- as_draws_df(fit)
keep <- 1:40
ep <- posterior_epred(fit, newdata = nd, draw_ids = keep)
lp <- posterior_linpred(fit, newdata = nd, draw_ids = keep)
no_y <- tryCatch({ posterior_epred(fit, newdata = nd[, c("g", "time", "x")],
                                   draw_ids = keep) },
                 error = function(e) conditionMessage(e))
na_y <- tryCatch({ posterior_epred(fit, newdata = transform(nd, y = NA), draw_ids = keep) },
                 error = function(e) conditionMessage(e))
out <- list(data = d, newdata = nd,
            draws = list(b_Intercept = dr$b_Intercept[keep], b_x = dr$b_x[keep],
                         ar = dr$`ar[1]`[keep], sigma = dr$sigma[keep]),
            epred = ep, linpred = lp,
            epred_without_y = if (is.character(no_y)) no_y else no_y,
            epred_na_y = if (is.character(na_y)) na_y else na_y,
            fitted_epred = posterior_epred(fit, draw_ids = keep)[, 1:10],
            brms = as.character(packageVersion("brms")))
write(toJSON(out, digits = 12, pretty = FALSE), "brms_ar_newdata.json")
