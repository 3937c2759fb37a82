-- Snapshots: one row per account per 5-s tick. The id is derived from (account, tick), so a
-- tick delivered twice (spool, buffer, replay) is stored once.
CREATE TABLE portfolio_greeks (
    id                   uuid PRIMARY KEY,
    ts                   timestamptz NOT NULL,
    account              text NOT NULL,
    mode                 text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    net_delta            double precision,
    net_gamma            double precision,
    net_theta            double precision,
    net_vega             double precision,
    net_dollar_delta     double precision,
    position_count       integer NOT NULL CHECK (position_count >= 0),
    option_count         integer NOT NULL CHECK (option_count >= 0),
    options_with_greeks  integer NOT NULL CHECK (options_with_greeks BETWEEN 0 AND option_count),
    stalest_greek_age_s  double precision CHECK (stalest_greek_age_s >= 0),
    underlyings          jsonb NOT NULL DEFAULT '{}',
    stored_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN portfolio_greeks.net_delta IS 'share-equivalents; NULL when no position contributed a known delta';
COMMENT ON COLUMN portfolio_greeks.underlyings IS 'per underlying symbol: the same net values and counts';

-- "Net delta of account X over the last hour", "latest snapshot per account".
CREATE INDEX portfolio_greeks_account_ts ON portfolio_greeks (account, ts DESC);
-- Time ranges over all accounts: rows arrive in time order, so a BRIN index is tiny.
CREATE INDEX portfolio_greeks_ts_brin ON portfolio_greeks USING brin (ts);

-- Every event of the IBKR connection.
CREATE TABLE api_logs (
    id         uuid PRIMARY KEY,
    ts         timestamptz NOT NULL,
    mode       text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    level      text NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error', 'critical')),
    event      text NOT NULL,
    code       integer,
    message    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    stored_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_logs_ts ON api_logs (ts DESC);
-- "Every disconnect this week": by event, then time.
CREATE INDEX api_logs_event_ts ON api_logs (event, ts DESC);
-- "What went wrong last night": the few rows that are not routine.
CREATE INDEX api_logs_problems ON api_logs (ts DESC) WHERE level IN ('warning', 'error', 'critical');
