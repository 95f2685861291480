# brms references for #22: hypothesis() and bayes_R2() on sleepstudy (Reaction ~ Days + (Days | Subject))
# brms 2.18.0 / rstan 2.21, default priors, 4 chains x (1000 warmup + 5000 draws), seed 1.
suppressMessages({library(brms); library(jsonlite)})
d <- lme4::sleepstudy
fit <- brm(Reaction ~ Days + (Days | Subject), data = d, chains = 4, iter = 6000, warmup = 1000,
           seed = 1, refresh = 0, cores = 2)
h2list <- function(h) {
  x <- h$hypothesis
  lapply(seq_len(nrow(x)), function(i) list(Hypothesis = as.character(x$Hypothesis[i]),
    Estimate = x$Estimate[i], Est.Error = x$Est.Error[i], CI.Lower = x$CI.Lower[i],
    CI.Upper = x$CI.Upper[i], Evid.Ratio = x$Evid.Ratio[i], Post.Prob = x$Post.Prob[i],
    Star = as.character(x$Star[i])))
}
out <- list()
out$hyp_b <- h2list(hypothesis(fit, c("Days > 10.5", "Intercept - 25 * Days = 0", "Days < 11")))
out$hyp_sd <- h2list(hypothesis(fit, "Days < 10", class = "sd", group = "Subject"))
r2c <- bayes_R2(fit); r2m <- bayes_R2(fit, re_formula = NA)
out$bayes_r2 <- list(conditional = as.list(r2c[1, ]), marginal = as.list(r2m[1, ]))
ps <- posterior_summary(fit)
out$posterior <- lapply(split(ps, seq_len(nrow(ps))), function(r) list(mean = r[1], sd = r[2]))
names(out$posterior) <- rownames(ps)
out$posterior <- out$posterior[grepl("^(b_|sd_|cor_|sigma)", names(out$posterior))]
s <- summary(fit)
out$min_ess_bulk <- min(c(s$fixed$Bulk_ESS, s$random$Subject$Bulk_ESS, s$spec_pars$Bulk_ESS))
out$note <- "brms 2.18.0 / rstan 2.21, default priors, 4 chains x (1000 warmup + 5000 draws), seed 1; hypothesis() at alpha = 0.05; bayes_R2 summary (Estimate, Est.Error, Q2.5, Q97.5)"
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE), "brms_answers.json")
