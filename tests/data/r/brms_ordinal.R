# brms 2.18 references for mixedformula's ordinal and categorical families.
# Run: Rscript tests/data/r/brms_ordinal.R  (writes tests/data/brms_ordinal.json and
# tests/data/{inhaler,wine,categorical_sim}.csv); took ~25 min on the loaded 2-core machine.
suppressMessages({library(brms); library(ordinal); library(jsonlite)})
out_json <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else "tests/data/brms_ordinal.json"
out_dir <- dirname(out_json)
res <- list()
summ <- function(fit) {
  d <- as_draws_df(fit)
  keep <- grep("^(b_|bcs_|sd_|cor_|disc)", names(d), value = TRUE)
  list(mean = as.list(colMeans(as.data.frame(d)[keep])),
       sd = as.list(sapply(as.data.frame(d)[keep], sd)),
       ndraws = nrow(d))
}
save <- function() write(toJSON(res, auto_unbox = TRUE, digits = 10, pretty = TRUE), out_json)

data(inhaler); data(wine)
write.csv(inhaler, file.path(out_dir, "inhaler.csv"), row.names = FALSE)
write.csv(wine[, c("rating", "temp", "contact", "judge")], file.path(out_dir, "wine.csv"),
          row.names = FALSE)
f1 <- brm(rating ~ treat + period + carry + (1 | subject), data = inhaler,
          family = cumulative("logit"), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$inhaler_cumulative <- summ(f1)
rows <- c(1, 100, 300, 400, 560)
ep <- posterior_epred(f1, newdata = inhaler[rows, ])       # S x N x K
res$inhaler_cumulative$epred_rows <- rows
res$inhaler_cumulative$epred_mean <- apply(ep, c(2, 3), mean)
res$inhaler_cumulative$epred_sd <- apply(ep, c(2, 3), sd)
ps <- prior_summary(f1)
res$inhaler_cumulative$prior <- data.frame(prior = ps$prior, class = ps$class, coef = ps$coef, group = ps$group)
res$inhaler_cumulative$clmm <- as.list(coef(clmm(factor(rating) ~ treat + period + carry + (1 | subject), data = inhaler)))
save()

data(wine)
f2 <- brm(rating ~ temp + contact + (1 | judge), data = wine,
          family = cumulative("logit"), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$wine_cumulative <- summ(f2)
res$wine_cumulative$clmm <- as.list(coef(clmm(rating ~ temp + contact + (1 | judge), data = wine)))
save()

f3 <- brm(rating ~ treat + period + carry + (1 | subject), data = inhaler,
          family = acat("logit"), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$inhaler_acat <- summ(f3)
save()

f3b <- brm(rating ~ period + cs(treat) + (1 | subject), data = inhaler,
          family = sratio("logit"), chains = 4, iter = 2000, warmup = 1000,
          cores = 1, seed = 1, refresh = 0)
res$inhaler_sratio_cs <- summ(f3b)
save()

set.seed(2024)
J <- 30; n <- 600
g <- sample(rep(1:J, length.out = n)); x <- rnorm(n)
u <- MASS::mvrnorm(J, c(0, 0), matrix(c(0.6, 0.3, 0.3, 0.5), 2))
etaB <- -0.3 + 0.8 * x + u[g, 1]; etaC <- 0.4 - 0.5 * x + u[g, 2]
pr <- cbind(1, exp(etaB), exp(etaC)); pr <- pr / rowSums(pr)
y <- apply(pr, 1, function(p) sample(c("A", "B", "C"), 1, prob = p))
sim <- data.frame(y = y, x = x, g = paste0("g", g))
write.csv(sim, file.path(out_dir, "categorical_sim.csv"), row.names = FALSE)
f4 <- brm(y ~ x + (1 | p | g), data = sim, family = categorical(),
          chains = 4, iter = 2000, warmup = 1000, cores = 1, seed = 1, refresh = 0)
res$categorical_sim <- summ(f4)
save()
