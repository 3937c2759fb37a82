-- Scenario P&L by full revaluation (issue #16, docs/scenarios.md): one row per account and
-- stored tick (BRIDGE_SCENARIO_INTERVAL_S), all money in the account's base currency.
-- A grid is 60 P&Ls: 10 underlying moves (-20, -10, -5, -2, -1, +1, +2, +5, +10, +20 %) for each
-- of 3 implied-vol shifts (-5, 0, +5 vol points), now and one day later; element
-- 1 + (day x 3 + shift) x 10 + move (all 0-based), PostgreSQL arrays counting from 1.
-- float8 arrays keep 8 bytes a number (jsonb 16-19, migration 005); the underlyings are
-- parallel arrays. NULL: nothing contributed (never zeros).
-- Day partitions like portfolio_greeks' (migration 004), kept ahead and dropped past the raw
-- retention by the replayer's maintenance (database/history.py).
CREATE TABLE scenario_pnl (
    id                        uuid NOT NULL,
    ts                        timestamptz NOT NULL,
    account                   text NOT NULL,
    mode                      text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    currency                  text,
    grid                      double precision[] CHECK (cardinality(grid) = 60),
    worst_pnl                 double precision,
    worst_scenario            smallint CHECK (worst_scenario BETWEEN 0 AND 59),
    beta_grid                 double precision[] CHECK (cardinality(beta_grid) = 60),
    beta_worst_pnl            double precision,
    beta_worst_scenario       smallint CHECK (beta_worst_scenario BETWEEN 0 AND 59),
    delta_gamma_10            double precision[] CHECK (cardinality(delta_gamma_10) = 2),
    completeness              jsonb NOT NULL,
    underlying_symbols        text[] NOT NULL,
    underlying_grids          double precision[],
    underlying_worst_pnl      double precision[],
    underlying_worst_scenario smallint[],
    underlying_delta_gamma_10 double precision[],
    underlying_completeness   jsonb,
    stored_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, ts),
    UNIQUE (id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX scenario_pnl_ts ON scenario_pnl (ts);
-- A row of a day without its partition waits here; the maintenance moves it in.
CREATE TABLE scenario_pnl_default PARTITION OF scenario_pnl DEFAULT;
-- Today and the next 7 days, so rows can be stored before the replayer's first run.
DO $partitions$
DECLARE
    today timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    day timestamptz;
BEGIN
    day := today;
    WHILE day < today + interval '8 days' LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF scenario_pnl FOR VALUES FROM (%L) TO (%L)',
                       'scenario_pnl_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       day, day + interval '1 day');
        day := day + interval '1 day';
    END LOOP;
END
$partitions$;

COMMENT ON TABLE scenario_pnl IS
    'per account and stored tick: the P&L of every position revalued (QuantLib) under 60 scenarios, in base currency; docs/scenarios.md';
COMMENT ON COLUMN scenario_pnl.grid IS
    '60 P&Ls, each underlying moved by its own move; element 1 + (day x 3 + vol shift) x 10 + move; today''s unmoved value is 0 by construction';
COMMENT ON COLUMN scenario_pnl.worst_pnl IS 'the lowest P&L of grid (a loss when negative)';
COMMENT ON COLUMN scenario_pnl.worst_scenario IS '0-based index into grid of worst_pnl (the first, if tied)';
COMMENT ON COLUMN scenario_pnl.beta_grid IS
    '60 P&Ls, each underlying moved by its beta x the benchmark''s move (Risk Navigator''s beta-weighted view); positions without beta are missing (no_beta)';
COMMENT ON COLUMN scenario_pnl.delta_gamma_10 IS
    'the delta-gamma approximation (dollar delta x move + 0.5 gamma (move x price)^2) at -10 % and +10 %, beside grid''s full revaluation of the same moves';
COMMENT ON COLUMN scenario_pnl.completeness IS
    '{grid|beta_grid|delta_gamma: {contributing, missing, reasons: {reason: n}}}';
COMMENT ON COLUMN scenario_pnl.underlying_grids IS
    'one row of 60 per underlying_symbols, each underlying by its own move; a row of NULLs: nothing contributed';
COMMENT ON COLUMN scenario_pnl.underlying_delta_gamma_10 IS 'one row of 2 per underlying_symbols';
COMMENT ON COLUMN scenario_pnl.underlying_completeness IS
    '{symbol: {grid|delta_gamma: counts}} for the underlyings where some position is missing; NULL when none is';
