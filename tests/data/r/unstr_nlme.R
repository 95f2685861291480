# Reference for brms' unstr(time, gr) residuals in mf.lmer (issue 23): nlme::lme with
# corSymm on Orthodont. Run from tests/data:  Rscript r/unstr_nlme.R  -> unstr_nlme.json
# corSymm next to a random intercept of the same subject is not identified (σ_b² 11ᵀ + σ²C is
# again σ'² C'): the group term is a random slope on age (centred at 11), whose σ_b² a aᵀ
# changes the diagonal of V_j, which σ²C keeps constant. nlme's default optimiser (nlminb)
# is used: optim's BFGS and Nelder-Mead stopped 5e-4 and 0.16 log-likelihood units lower.
suppressMessages({library(nlme); library(jsonlite)})
d <- read.csv("orthodont.csv")
d$time <- ave(d$age, d$Subject, FUN = function(v) rank(v))    # 1..4: index of age in subject
d$a <- d$age - 11
one <- function(method) {
  m <- lme(distance ~ age, data = d, random = ~ a - 1 | Subject,
           correlation = corSymm(form = ~ time | Subject), method = method,
           control = lmeControl(msMaxIter = 1000, maxIter = 1000, msMaxEval = 5000))
  C <- corMatrix(m$modelStruct$corStruct)[[1]]
  list(beta = unname(fixef(m)), sigma = m$sigma,
       sd_Subject = sqrt(as.numeric(getVarCov(m)[1, 1])),
       cor = unname(C[upper.tri(C)]),        # brms' order: column by column (1,2),(1,3),(2,3),...
       C = unname(C),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"))
}
out <- list(reml = one("REML"), ml = one("ML"), nlme = as.character(packageVersion("nlme")))
write(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "unstr_nlme.json")
