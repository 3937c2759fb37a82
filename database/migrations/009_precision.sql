-- The gateway's own beta-weighted delta beside ours (issue #17), and the precision and market
-- data a figure's completeness now states.
-- - `gateway_beta_delta`: PORTAL, Σ field 7696 ("SPX Delta", IBKR's beta-weighted delta per
--   unit, against SPX with IBKR's betas) × qty × multiplier over the positions in
--   net_beta_delta, in SPX units; NULL unless every one of them had a 7696 (and in SOCKET
--   mode, which has no such field). Ours × benchmark price / SPX price is the same quantity
--   with our betas (docs/ibkr-conventions.md, "The gateway's own beta-weighted delta").
-- - completeness keeps, per figure, `rounding_bound` and `imprecise` (inputs the gateway
--   rounded) and `market_data` (inputs delayed or frozen) where they apply: jsonb as before, no
--   column needed; see the comment below.
ALTER TABLE portfolio_greeks ADD COLUMN gateway_beta_delta double precision;
COMMENT ON COLUMN portfolio_greeks.gateway_beta_delta IS
    'PORTAL: Σ field 7696 (SPX Delta) × qty × multiplier over the positions in net_beta_delta, SPX units, IBKR''s betas; NULL unless every one had it';
COMMENT ON COLUMN portfolio_greeks.completeness IS
    'format 2: {figure: {contributing, missing, reasons: {reason: n}}} for the five figures; format 3: only the figures that are not complete (NULL: all complete), see full_completeness(); since 009 a figure may also carry rounding_bound (how far rounded inputs can put it from the exact figure), imprecise (that bound is over 1 % of it) and market_data ({delayed|frozen|delayed_frozen: positions})';

-- The view keeps giving every row in full, now with the new column (added last: CREATE OR
-- REPLACE keeps the columns before it as they were, so whatever reads the view is unchanged).
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
    g.gateway_beta_delta
FROM portfolio_greeks g;
