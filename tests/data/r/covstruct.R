# Reference for glmmTMB-style group structures (issue 23, part 2): ML fits by glmmTMB.
# Run from tests/data:  Rscript r/covstruct.R   -> covstruct_data.csv, covstruct_glmmTMB.json
suppressMessages({library(glmmTMB); library(MASS); library(jsonlite)})
set.seed(23)
G <- 40; nt <- 4; rep <- 2
times <- factor(rep(rep(1:nt, each = rep), G))
group <- factor(rep(sprintf("g%02d", 1:G), each = nt * rep))
ar1 <- function(rho, sd) sd^2 * rho^abs(outer(1:nt, 1:nt, "-"))
u_ar <- mvrnorm(G, rep(0, nt), ar1(0.7, 1.0))
sds <- c(0.6, 0.9, 1.2, 0.8); R <- matrix(0.4, nt, nt); diag(R) <- 1
u_cs <- mvrnorm(G, rep(0, nt), diag(sds) %*% R %*% diag(sds))
gi <- as.integer(group); ti <- as.integer(times)
d <- data.frame(group = group, times = times, x = rnorm(G * nt * rep))
d$y_ar <- 1 + 0.5 * d$x + u_ar[cbind(gi, ti)] + rnorm(nrow(d), sd = 0.5)
d$y_cs <- 1 + 0.5 * d$x + u_cs[cbind(gi, ti)] + rnorm(nrow(d), sd = 0.5)
write.csv(d, "covstruct_data.csv", row.names = FALSE)
one <- function(f, resp) {
  m <- glmmTMB(f, data = d, REML = FALSE)
  vc <- VarCorr(m)$cond$group
  list(beta = unname(fixef(m)$cond), sd = unname(attr(vc, "stddev")),
       cor = unname(attr(vc, "correlation")), sigma = sigma(m),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"))
}
out <- list(
  ar1 = one(y_ar ~ x + ar1(times + 0 | group), "y_ar"),
  cs = one(y_cs ~ x + cs(times + 0 | group), "y_cs"),
  diag = one(y_cs ~ x + diag(times + 0 | group), "y_cs"),
  us = one(y_cs ~ x + us(times + 0 | group), "y_cs"),
  toep = one(y_cs ~ x + toep(times + 0 | group), "y_cs"),
  glmmTMB = as.character(packageVersion("glmmTMB")))
write(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "covstruct_glmmTMB.json")
