-- The gateway's beta-weighted delta (field 7696, SPX units, IBKR's betas) in our unit, so the
-- dashboard can show how far it is from ours (issue "Inputs that can't lie"):
-- `gateway_beta_delta_benchmark_shares` = gateway_beta_delta × SPX's price × the rate of USD
-- in the base currency ÷ (the benchmark's price × the rate of its currency), the same
-- exposure in shares of our benchmark, like net_beta_delta. NULL when gateway_beta_delta is,
-- or when SPX's price or a rate is unknown: SPX over SPY is near 10, not 10, so no ratio is
-- assumed (docs/ibkr-conventions.md, "The gateway's own beta-weighted delta").
ALTER TABLE portfolio_greeks ADD COLUMN gateway_beta_delta_benchmark_shares double precision;
COMMENT ON COLUMN portfolio_greeks.gateway_beta_delta_benchmark_shares IS
    'PORTAL: gateway_beta_delta × SPX price × fx(USD) / (benchmark price × fx(benchmark currency)), in shares of the benchmark like net_beta_delta; NULL when any of them is unknown';

-- The view keeps giving every row in full, the new column last (CREATE OR REPLACE keeps the
-- columns before it as they were).
CREATE OR REPLACE VIEW snapshots AS
SELECT g.id, g.ts, g.account, g.mode, g.format_version, g.currency,
    g.net_delta, g.net_gamma, g.net_dollar_delta, g.net_dollar_gamma, g.net_theta, g.net_vega,
    g.net_beta_delta,
    CASE WHEN g.format_version >= 3
         THEN full_completeness(g.completeness, g.position_count, g.option_count)
         ELSE g.completeness END AS completeness,
    g.net_liquidation, g.unrealized_pnl, g.daily_pnl,
    g.position_count, g.option_count, g.options_with_greeks, g.stalest_greek_age_s,
    CASE WHEN g.underlying_symbols IS NULL THEN g.underlyings
         ELSE (SELECT coalesce(jsonb_object_agg(u.underlying, to_jsonb(u) - 'underlying'), '{}')
               FROM snapshot_underlyings(NULL, g.underlying_symbols, g.underlying_figures,
                                         g.underlying_counts, g.underlying_completeness) u)
    END AS underlyings,
    g.stored_at,
    g.gateway_beta_delta,
    g.gateway_beta_delta_benchmark_shares
FROM portfolio_greeks g;
