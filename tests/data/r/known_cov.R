# Reference for gr(cov = A) (issue 23): a simulated phylogenetic data set and brms 2.18 fits.
# Run from tests/data:  Rscript r/known_cov.R
# Writes known_cov_A.csv (A, row names = species), known_cov_data.csv, known_cov_brms.json.
suppressMessages({library(ape); library(brms); library(jsonlite)})
set.seed(2023)
S <- 30
tree <- rtree(S)
A <- vcv(tree, corr = TRUE)          # correlation matrix implied by Brownian motion
sp <- rownames(A)
L <- t(chol(A))
u0 <- as.vector(L %*% rnorm(S)) * 0.8        # sd_phylo = 0.8
u1 <- as.vector(L %*% rnorm(S)) * 0.4        # slope sd for the vector-valued model
n_per <- 4
d <- data.frame(phylo = rep(sp, each = n_per), x = rnorm(S * n_per))
j <- match(d$phylo, sp)
d$y <- 1 + 0.5 * d$x + u0[j] + u1[j] * d$x + rnorm(nrow(d), sd = 0.6)
write.csv(A, "known_cov_A.csv")
write.csv(d, "known_cov_data.csv", row.names = FALSE)
summ <- function(fit) {
  dr <- as_draws_df(fit)
  keep <- grep("^(b_|sd_|cor_|sigma)", names(dr), value = TRUE)
  lapply(setNames(keep, keep), function(k) list(mean = mean(dr[[k]]), sd = sd(dr[[k]])))
}
f1 <- brm(y ~ x + (1 | gr(phylo, cov = A)), data = d, data2 = list(A = A),
          chains = 4, iter = 2000, warmup = 1000, seed = 1, refresh = 0)
f2 <- brm(y ~ x + (1 + x | gr(phylo, cov = A)), data = d, data2 = list(A = A),
          chains = 4, iter = 2000, warmup = 1000, seed = 1, refresh = 0)
out <- list(intercept = summ(f1), slope = summ(f2),
            brms = as.character(packageVersion("brms")), draws = 4000)
write(toJSON(out, auto_unbox = TRUE, digits = 10, pretty = TRUE), "known_cov_brms.json")
