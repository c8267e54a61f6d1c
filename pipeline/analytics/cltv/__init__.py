"""Predicted customer lifetime value: a purchase-count model (BG/NBD, MBG/NBD or Pareto/NBD) times
a spend model (Gamma-Gamma or log-normal empirical Bayes), chosen on the backtest holdout
(``pipeline.analytics.model_selection``).

Inputs are per-customer frames (the SQL ``customer_summary``), never order lines: lifetimes'
``summary_data_from_transaction_data`` is replaced by SQL that computes the same summary.
**Time unit: days.** ``frequency`` (purchase days after the first), ``recency`` and ``t`` are in
days, as ``customer_summary`` computes them (lifetimes' ``freq='D'``), so the fitted ``alpha``
and the simulator's latent purchase rates are both per day, and the 90- and 365-day horizons need
no conversion. A "purchase" is a purchase *day* (several orders on one day count once), as in
lifetimes.

One module per model, each stating its part of the contract:

- ``base``: the input checks, ``FitResult``, ``ModelFitError`` and the penalizer ladder every fit
  walks (convergence is never assumed);
- ``transactions``: the purchase-count models behind one interface, and their fit on a summary;
  ``bgnbd`` (BG/NBD and MBG/NBD) and ``pareto_nbd``, one module per model family;
- ``spend``: the spend models behind one interface; ``gamma_gamma`` and ``lognormal``;
- ``scoring``: per-customer scores and value tiers from a transaction and a spend model;
- ``storage``: the parameter table and the saved model files.

Nothing is re-exported here: import the module that owns a name.
"""
