-- The P&L explain (issue #16, docs/pnl-explain.md): per account and interval between two
-- consecutive snapshots, how much of the gateway's own daily P&L change the Greeks explain.
-- Beside the snapshot rather than in it, so the snapshot row stays lean (docs/scaling.md): an
-- explain row is ~0.3 kB a tick per account, its positions one narrow row each.
-- Money is in the account's base currency (`currency`). An interval with marks is not scored.
CREATE TABLE pnl_explain (
    account            text NOT NULL,
    ts                 timestamptz NOT NULL,            -- the interval's end: the later snapshot
    id                 uuid NOT NULL UNIQUE,
    mode               text NOT NULL CHECK (mode IN ('SOCKET', 'PORTAL')),
    start_ts           timestamptz NOT NULL CHECK (start_ts < ts),
    currency           text,
    actual_pnl         double precision,
    explained_pnl      double precision,
    unexplained_pnl    double precision GENERATED ALWAYS AS (actual_pnl - explained_pnl) STORED,
    delta_pnl          double precision,
    gamma_pnl          double precision,
    theta_pnl          double precision,
    vega_pnl           double precision,
    linear_pnl         double precision,
    marks              text[] NOT NULL CHECK (marks <@ ARRAY['positions_changed',
                           'pnl_rolled_over', 'input_missing']),
    missing            jsonb,                           -- {reason: positions}; NULL: none
    underlying_symbols text[] NOT NULL,
    underlying_rows    double precision[],              -- per symbol: terms, then explained
    stored_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, ts),
    CHECK (cardinality(marks) > 0 OR (actual_pnl IS NOT NULL AND explained_pnl IS NOT NULL))
);
COMMENT ON TABLE pnl_explain IS
    'per account and interval (start_ts, ts]: the change of the gateway''s daily P&L (actual_pnl) against the Greeks'' explanation of it; base currency; marks: why the interval is not scored';
COMMENT ON COLUMN pnl_explain.underlying_rows IS
    'per underlying_symbols: [delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, explained_pnl]; NULL elements unknown or not applicable';

-- One row per position and interval; joins position_legs (migration 006) on (account, ts, conid).
CREATE TABLE pnl_explain_positions (
    account       text NOT NULL,
    ts            timestamptz NOT NULL,
    conid         bigint NOT NULL,
    delta_pnl     double precision,
    gamma_pnl     double precision,
    theta_pnl     double precision,
    vega_pnl      double precision,
    linear_pnl    double precision,
    explained_pnl double precision,
    missing       text,                                 -- the input it lacked; NULL: none
    -- the gateway's own daily P&L change of the position (SOCKET reqPnLSingle); NULL in PORTAL
    actual_pnl    double precision,
    PRIMARY KEY (account, ts, conid),
    FOREIGN KEY (account, ts) REFERENCES pnl_explain (account, ts) ON DELETE CASCADE
);

-- Sums per minute, hour and day of the scored intervals (the marked ones only counted).
CREATE VIEW pnl_explain_rollup AS
SELECT width, account, date_bin(step, ts, TIMESTAMPTZ '2000-01-01') AS bucket,
       min(currency) AS currency,
       count(*) FILTER (WHERE cardinality(marks) = 0) AS scored,
       count(*) FILTER (WHERE cardinality(marks) > 0) AS not_scored,
       sum(actual_pnl) FILTER (WHERE cardinality(marks) = 0) AS actual_pnl,
       sum(explained_pnl) FILTER (WHERE cardinality(marks) = 0) AS explained_pnl,
       sum(delta_pnl) FILTER (WHERE cardinality(marks) = 0) AS delta_pnl,
       sum(gamma_pnl) FILTER (WHERE cardinality(marks) = 0) AS gamma_pnl,
       sum(theta_pnl) FILTER (WHERE cardinality(marks) = 0) AS theta_pnl,
       sum(vega_pnl) FILTER (WHERE cardinality(marks) = 0) AS vega_pnl,
       sum(linear_pnl) FILTER (WHERE cardinality(marks) = 0) AS linear_pnl
FROM pnl_explain
CROSS JOIN (VALUES ('1m', INTERVAL '1 minute'), ('1h', INTERVAL '1 hour'),
                   ('1d', INTERVAL '1 day')) AS widths(width, step)
GROUP BY width, account, bucket;

-- The day's score per account (UTC days), as collector/explain.py day_score computes it:
-- explained_share = 1 - Σ|unexplained| / Σ|actual| over the scored intervals; spearman = the
-- Pearson correlation of the ranks of explained and actual (ties get their average rank, as
-- rank() + (ties - 1) / 2); the worst interval's |unexplained| and its end. The FRTB P&L
-- attribution test calls a Spearman correlation of 0.80 or more green.
CREATE VIEW pnl_explain_daily AS
WITH scored AS (
    SELECT account, ts, (ts AT TIME ZONE 'UTC')::date AS day, actual_pnl, explained_pnl,
           abs(actual_pnl - explained_pnl) AS miss
    FROM pnl_explain
    WHERE cardinality(marks) = 0
), ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY account, day ORDER BY explained_pnl)
             + (count(*) OVER (PARTITION BY account, day, explained_pnl) - 1) / 2.0
             AS explained_rank,
           rank() OVER (PARTITION BY account, day ORDER BY actual_pnl)
             + (count(*) OVER (PARTITION BY account, day, actual_pnl) - 1) / 2.0 AS actual_rank,
           row_number() OVER (PARTITION BY account, day ORDER BY miss DESC, ts) AS worst_first
    FROM scored
), days AS (
    SELECT account, (ts AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE cardinality(marks) > 0) AS not_scored
    FROM pnl_explain GROUP BY 1, 2
)
SELECT d.account, d.day,
       count(r.ts) AS scored,
       d.not_scored,
       1 - sum(r.miss) / nullif(sum(abs(r.actual_pnl)), 0) AS explained_share,
       CASE WHEN count(r.ts) >= 3
            THEN corr(r.explained_rank::float8, r.actual_rank::float8) END AS spearman,
       max(r.miss) AS worst_unexplained,
       max(r.ts) FILTER (WHERE r.worst_first = 1) AS worst_at
FROM days d
LEFT JOIN ranked r ON r.account = d.account AND r.day = d.day
GROUP BY d.account, d.day, d.not_scored;
COMMENT ON VIEW pnl_explain_daily IS
    'per account and UTC day: the P&L explain score of the scored intervals (docs/pnl-explain.md)';
