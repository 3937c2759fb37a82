-- Format 2 snapshots (issue #8): money in the account's base currency, dollar gamma,
-- beta-weighted delta, completeness per figure, and the account's value beside them.
-- Rows stored before this migration keep their values; `format_version` tells them apart
-- (docs/ibkr-conventions.md, "Rows of format 1", says what their figures meant).
ALTER TABLE portfolio_greeks
    ADD COLUMN format_version   smallint NOT NULL DEFAULT 1 CHECK (format_version IN (1, 2)),
    ADD COLUMN currency         text,
    ADD COLUMN net_dollar_gamma double precision,
    ADD COLUMN net_beta_delta   double precision,
    ADD COLUMN completeness     jsonb,
    ADD COLUMN net_liquidation  double precision,
    ADD COLUMN unrealized_pnl   double precision,
    ADD COLUMN daily_pnl        double precision;

-- Account-level share-equivalents add unlike units (SPY shares plus ES index points x 50): the
-- columns stay for format-1 rows and are NULL in every format-2 row. Share-equivalents live on
-- per underlying, in `underlyings` and in the view `underlying_greeks` below.
ALTER TABLE portfolio_greeks
    ADD CONSTRAINT portfolio_greeks_v2_no_account_share_equivalents
    CHECK (format_version = 1 OR (net_delta IS NULL AND net_gamma IS NULL));

COMMENT ON COLUMN portfolio_greeks.net_delta IS
    'format 1 only: share-equivalents summed across underlyings (not a quantity); NULL in format 2';
COMMENT ON COLUMN portfolio_greeks.net_gamma IS
    'format 1 only: share-equivalent gamma summed across underlyings; NULL in format 2';
COMMENT ON COLUMN portfolio_greeks.net_dollar_delta IS
    'format 2: base currency, Σ delta × qty × multiplier × underlying price / magnifier × fx; format 1: each position''s own currency, no magnifier';
COMMENT ON COLUMN portfolio_greeks.net_theta IS 'format 2: base currency per day; format 1: unconverted';
COMMENT ON COLUMN portfolio_greeks.net_vega IS 'format 2: base currency per vol point; format 1: unconverted';
COMMENT ON COLUMN portfolio_greeks.currency IS 'the account''s base currency: every money figure of the row is in it';
COMMENT ON COLUMN portfolio_greeks.net_dollar_gamma IS
    'base currency: change of dollar delta for a 1 % move of every underlying';
COMMENT ON COLUMN portfolio_greeks.net_beta_delta IS
    'shares of the benchmark: Σ dollar delta × beta / (benchmark price × fx)';
COMMENT ON COLUMN portfolio_greeks.completeness IS
    '{figure: {contributing, missing, reasons: {reason: n}}} for the five figures';
COMMENT ON COLUMN portfolio_greeks.net_liquidation IS 'base currency, from the gateway; NULL when unknown';
COMMENT ON COLUMN portfolio_greeks.unrealized_pnl IS 'base currency, from the gateway; NULL when unknown';
COMMENT ON COLUMN portfolio_greeks.daily_pnl IS 'base currency, from the gateway; NULL when unknown';

-- Per underlying, one row per snapshot and symbol: where share-equivalent delta and gamma mean
-- something. Readers of the old account-level net_delta move here.
CREATE VIEW underlying_greeks AS
SELECT g.id AS snapshot_id, g.ts, g.account, g.mode, g.format_version, g.currency,
    u.key AS underlying,
    (u.value->>'net_delta')::float8 AS net_delta,
    (u.value->>'net_gamma')::float8 AS net_gamma,
    (u.value->>'net_dollar_delta')::float8 AS net_dollar_delta,
    (u.value->>'net_dollar_gamma')::float8 AS net_dollar_gamma,
    (u.value->>'net_theta')::float8 AS net_theta,
    (u.value->>'net_vega')::float8 AS net_vega,
    (u.value->>'net_beta_delta')::float8 AS net_beta_delta,
    u.value->'completeness' AS completeness,
    (u.value->>'position_count')::integer AS position_count,
    (u.value->>'option_count')::integer AS option_count,
    (u.value->>'options_with_greeks')::integer AS options_with_greeks
FROM portfolio_greeks g, jsonb_each(g.underlyings) u;

-- One beta per underlying, benchmark and day (the id is derived from the three).
CREATE TABLE betas (
    id           uuid PRIMARY KEY,
    ts           timestamptz NOT NULL,
    underlying   text NOT NULL,
    benchmark    text NOT NULL,
    beta         double precision NOT NULL,
    as_of        date NOT NULL,
    sample_size  integer CHECK (sample_size >= 2),
    source       text NOT NULL CHECK (source IN ('history', 'file')),
    stored_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (underlying, benchmark, as_of)
);
COMMENT ON TABLE betas IS
    'OLS slope of daily simple returns on the benchmark''s over the last year of bars (source history), or BRIDGE_BETAS_FILE (source file)';
