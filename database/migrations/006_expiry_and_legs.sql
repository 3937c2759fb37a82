-- Greeks by expiry and the legs behind the totals (issue #16, docs/expiry-and-legs.md), each in
-- a table of its own so the snapshot row stays lean (issue #20). Both are partitioned by UTC
-- day like portfolio_greeks, kept as long as it is (BRIDGE_RETENTION_RAW_DAYS) and made ahead
-- by the replayer's maintenance (database/history.py).

-- One row per account and tick: dollar delta, dollar gamma, theta and vega per expiry bucket,
-- overall and per underlying, in arrays (8 bytes a number; the style of migration 005).
CREATE TABLE expiry_greeks (
    account                 text NOT NULL,
    ts                      timestamptz NOT NULL,
    id                      uuid NOT NULL,
    mode                    text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    currency                text,
    bucket_figures          double precision[] NOT NULL,
    linear_dollar_delta     double precision,
    position_count          integer NOT NULL,
    option_count            integer NOT NULL,
    completeness            jsonb,
    underlying_symbols      text[] NOT NULL,
    underlying_figures      double precision[] NOT NULL,
    underlying_linear       double precision[] NOT NULL,
    underlying_counts       integer[] NOT NULL,
    underlying_completeness jsonb,
    PRIMARY KEY (account, ts)
) PARTITION BY RANGE (ts);

COMMENT ON TABLE expiry_greeks IS
    'per account and tick: the Greeks by expiry bucket (0-7, 8-30, 31-90, 91-365, 366+ calendar days from the tick''s New York date to the option''s last trading day); id is the snapshot''s of the same account and tick';
COMMENT ON COLUMN expiry_greeks.bucket_figures IS
    '[bucket][figure]: 5 rows (0-7, 8-30, 31-90, 91-365, 366+) of [net_dollar_delta, net_dollar_gamma, net_theta, net_vega] in the base currency (per 1 % move for gamma, per day for theta, per vol point for vega); NULL: nothing contributed';
COMMENT ON COLUMN expiry_greeks.linear_dollar_delta IS
    'base currency: the dollar delta of the delta-one positions (stocks, ETFs, futures, CFDs), which have no option expiry; buckets plus this are the snapshot''s net_dollar_delta';
COMMENT ON COLUMN expiry_greeks.completeness IS
    '{figure: {contributing, missing, reasons}} for the figures not complete only (NULL: all complete: every position contributed to dollar delta, every option to the others); reasons include no_expiry and expired';
COMMENT ON COLUMN expiry_greeks.underlying_figures IS
    '[underlying][bucket][figure], underlyings in the order of underlying_symbols';
COMMENT ON COLUMN expiry_greeks.underlying_counts IS '[underlying][position_count, option_count]';
COMMENT ON COLUMN expiry_greeks.underlying_completeness IS
    '{symbol: the figures of that underlying not complete}; NULL when all are complete';

-- One row per position, account and time it was stored (every BRIDGE_LEGS_INTERVAL_S): its
-- inputs as the gateway gave them and its results. The P&L and explain terms of a leg are
-- another table's (keyed by account, ts, conid too).
CREATE TABLE position_legs (
    account          text NOT NULL,
    ts               timestamptz NOT NULL,
    conid            bigint NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    currency         text,
    symbol           text NOT NULL,
    sec_type         text NOT NULL,
    quantity         double precision,
    multiplier       double precision,
    magnifier        double precision,
    price            double precision,
    underlying_price double precision,
    implied_vol      double precision,
    strike           double precision,
    expiry           date,
    option_right     text CHECK (option_right IN ('C', 'P')),
    delta            double precision,
    gamma            double precision,
    theta            double precision,
    vega             double precision,
    dollar_delta     double precision,
    dollar_gamma     double precision,
    net_theta        double precision,
    net_vega         double precision,
    missing_reason   text,
    PRIMARY KEY (account, ts, conid)
) PARTITION BY RANGE (ts);

COMMENT ON TABLE position_legs IS
    'per position, account and storing time (BRIDGE_LEGS_INTERVAL_S): the inputs and results behind the snapshot''s totals (docs/expiry-and-legs.md)';
COMMENT ON COLUMN position_legs.currency IS 'the position''s own currency (its price, strike and Greeks are in it)';
COMMENT ON COLUMN position_legs.price IS 'the instrument''s own price in quoted units (an option''s premium; cents for a cents-quoted contract)';
COMMENT ON COLUMN position_legs.underlying_price IS 'an option''s underlying price as its Greeks were computed on, quoted units';
COMMENT ON COLUMN position_legs.implied_vol IS 'annualised, 0.25 for 25 %';
COMMENT ON COLUMN position_legs.expiry IS 'an option''s last trading day';
COMMENT ON COLUMN position_legs.delta IS 'per unit of underlying, as the gateway sent it; NULL for a delta-one position (its delta is 1)';
COMMENT ON COLUMN position_legs.dollar_delta IS 'base currency: what this position adds to net_dollar_delta';
COMMENT ON COLUMN position_legs.dollar_gamma IS 'base currency per 1 % move: what it adds to net_dollar_gamma';
COMMENT ON COLUMN position_legs.net_theta IS 'base currency per day: what it adds to net_theta';
COMMENT ON COLUMN position_legs.net_vega IS 'base currency per vol point: what it adds to net_vega';
COMMENT ON COLUMN position_legs.missing_reason IS
    'why a figure of this position is unknown (the first of dollar delta, dollar gamma, theta, vega that is), as in completeness; NULL when every figure it counts in is known';

-- Rows of a day with no partition of its own wait in the default partition (migration 004).
CREATE TABLE expiry_greeks_default PARTITION OF expiry_greeks DEFAULT;
CREATE TABLE position_legs_default PARTITION OF position_legs DEFAULT;

-- Today and the next 7 days, so rows can be stored before the replayer's first run.
DO $partitions$
DECLARE
    source text;
    today timestamptz := date_trunc('day', now(), 'UTC');
    day timestamptz;
BEGIN
    FOREACH source IN ARRAY ARRAY['expiry_greeks', 'position_legs'] LOOP
        day := today;
        WHILE day < today + interval '8 days' LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           source || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), source,
                           day, day + interval '1 day');
            day := day + interval '1 day';
        END LOOP;
    END LOOP;
END
$partitions$;

CREATE INDEX expiry_greeks_ts_brin ON expiry_greeks USING brin (ts);
CREATE INDEX position_legs_ts_brin ON position_legs USING brin (ts);
