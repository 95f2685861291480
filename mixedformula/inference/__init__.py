"""Frequentist inference for :func:`mixedformula.lmer` fits, as lmerTest / pbkrtest / lme4:
t-tests with Satterthwaite or Kenward–Roger df (:mod:`.coef_table`), F-tables and likelihood-
ratio tests (:mod:`.anova`), confidence intervals (:mod:`.confint`, :mod:`.profile`) and the
parametric bootstrap (:mod:`.bootstrap`)."""
