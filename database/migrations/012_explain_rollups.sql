-- The P&L explain rolled up and stored, like the snapshots' figures (migration 004): per minute,
-- hour and day, and the day's score per account, kept past the raw rows' retention
-- (docs/pnl-explain.md, "Rollups and the day's score"). Until now the rollup and the score
-- were views over the raw intervals (007): recomputed at every read, and gone with the raw
-- day partitions after BRIDGE_RETENTION_RAW_DAYS.
--
-- The same mechanism as the snapshots': a statement trigger marks each minute that gains
-- intervals in pnl_explain_pending, in the transaction that stores them (a replay hours late
-- included); the replayer's maintenance (database/history.py) takes the marks, recomputes those
-- minutes from the raw intervals, their hours from the minutes and their days from the hours,
-- and once a day is over scores it (the Spearman correlation needs the day's intervals, so it
-- is computed once, from the raw rows, when no more are expected). Recomputing rather than
-- adding makes a replay or a second run change nothing.
--
-- The views keep their names and answers: a bucket (or a day) with a minute still marked, or a
-- day not scored yet, is computed from the raw intervals at read time; every other one is read
-- from the stored tables. The marks are written with the rows and cleared with the rollup, so
-- one statement sees each bucket either stored and current or marked.

-- One row per account and bucket. Money in the account's base currency (`currency`, the
-- smallest of the bucket's, as the view had it). The sums are over the scored intervals only;
-- `not_scored` and the counts by mark over the marked ones (an interval may carry several
-- marks). The absolute sums make the explained share of any bucket, and of a day from its
-- hours: 1 - abs_unexplained_pnl / abs_actual_pnl. `worst_unexplained` is the bucket's largest
-- |unexplained| of one scored interval, `worst_at` that interval's end (the earliest of equals).
-- Kept in step with database/history.py EXPLAIN_ROLLUP, which folds them.
CREATE TABLE pnl_explain_1m (
    account             text NOT NULL,
    bucket              timestamptz NOT NULL,
    currency            text,
    scored              integer NOT NULL CHECK (scored >= 0),
    not_scored          integer NOT NULL CHECK (not_scored >= 0),
    positions_changed   integer NOT NULL,
    pnl_rolled_over     integer NOT NULL,
    input_missing       integer NOT NULL,
    actual_pnl          double precision,
    explained_pnl       double precision,
    unexplained_pnl     double precision,
    delta_pnl           double precision,
    gamma_pnl           double precision,
    theta_pnl           double precision,
    vega_pnl            double precision,
    linear_pnl          double precision,
    abs_actual_pnl      double precision,
    abs_unexplained_pnl double precision,
    worst_unexplained   double precision,
    worst_at            timestamptz,
    PRIMARY KEY (account, bucket),
    CHECK (scored + not_scored > 0)
) PARTITION BY RANGE (bucket);
COMMENT ON TABLE pnl_explain_1m IS
    'the P&L explain per account and minute: sums of the scored intervals, counts of the marked ones (docs/pnl-explain.md)';
CREATE TABLE pnl_explain_1h (LIKE pnl_explain_1m INCLUDING ALL) PARTITION BY RANGE (bucket);
COMMENT ON TABLE pnl_explain_1h IS 'as pnl_explain_1m, per hour';
-- A day also keeps its Spearman correlation, computed from the raw intervals once the day is
-- over (`scored_at`: when; NULL while the day is open or has changed since).
CREATE TABLE pnl_explain_1d (
    LIKE pnl_explain_1m INCLUDING ALL,
    spearman  double precision,
    scored_at timestamptz
) PARTITION BY RANGE (bucket);
COMMENT ON TABLE pnl_explain_1d IS
    'as pnl_explain_1m, per UTC day, with the day''s Spearman correlation once the day is over (scored_at)';
-- The days waiting for their score: today's of every account, and a day that changed since.
CREATE INDEX pnl_explain_1d_open ON pnl_explain_1d (account, bucket) WHERE scored_at IS NULL;

-- Monthly partitions like the snapshots' rollups, made from the month of the oldest interval
-- to the next one, a default partition for the rest; the maintenance keeps them ahead and
-- drops them past their retention.
DO $partitions$
DECLARE
    target text;
    month timestamptz;
BEGIN
    FOREACH target IN ARRAY ARRAY['pnl_explain_1m', 'pnl_explain_1h', 'pnl_explain_1d'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', target || '_default', target);
        month := date_trunc('month', coalesce((SELECT min(ts) FROM pnl_explain), now()), 'UTC');
        WHILE month < date_trunc('month', now(), 'UTC') + interval '2 months' LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           target || '_p' || to_char(month AT TIME ZONE 'UTC', 'YYYYMMDD'), target,
                           month, (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
            month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
        END LOOP;
    END LOOP;
END
$partitions$;

-- The minutes of pnl_explain that gained intervals since they were last rolled up.
CREATE TABLE pnl_explain_pending (
    account text NOT NULL,
    bucket  timestamptz NOT NULL,
    PRIMARY KEY (account, bucket)
);

-- Every statement that stores intervals marks their minutes, whoever stores them and however
-- late; a duplicate absorbed by ON CONFLICT is not in the transition table and marks nothing.
CREATE FUNCTION pnl_explain_mark_rollups() RETURNS trigger LANGUAGE plpgsql AS $mark$
BEGIN
    INSERT INTO pnl_explain_pending (account, bucket)
    SELECT DISTINCT account, date_trunc('minute', ts, 'UTC') FROM stored
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$mark$;
CREATE TRIGGER pnl_explain_rollups AFTER INSERT ON pnl_explain
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT
    EXECUTE FUNCTION pnl_explain_mark_rollups();

-- Intervals stored before this migration are rolled up by the first maintenance runs (and read
-- from the raw rows until then).
INSERT INTO pnl_explain_pending (account, bucket)
SELECT DISTINCT account, date_trunc('minute', ts, 'UTC') FROM pnl_explain;

-- One account's raw intervals ending in [p_start, p_end) summed as a rollup row; no row when
-- there is none. The maintenance makes each minute with it and the views each bucket not
-- stored yet. A SQL function of one SELECT: the planner inlines it, so each call is a range
-- scan of the key (account, ts).
CREATE FUNCTION pnl_explain_sums(p_account text, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (
    currency text, scored bigint, not_scored bigint, positions_changed bigint,
    pnl_rolled_over bigint, input_missing bigint, actual_pnl float8, explained_pnl float8,
    unexplained_pnl float8, delta_pnl float8, gamma_pnl float8, theta_pnl float8,
    vega_pnl float8, linear_pnl float8, abs_actual_pnl float8, abs_unexplained_pnl float8,
    worst_unexplained float8, worst_at timestamptz)
LANGUAGE sql STABLE AS $sums$
SELECT min(e.currency),
       count(*) FILTER (WHERE cardinality(e.marks) = 0),
       count(*) FILTER (WHERE cardinality(e.marks) > 0),
       count(*) FILTER (WHERE 'positions_changed' = ANY(e.marks)),
       count(*) FILTER (WHERE 'pnl_rolled_over' = ANY(e.marks)),
       count(*) FILTER (WHERE 'input_missing' = ANY(e.marks)),
       sum(e.actual_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.explained_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.unexplained_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.delta_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.gamma_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.theta_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.vega_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(e.linear_pnl) FILTER (WHERE cardinality(e.marks) = 0),
       sum(abs(e.actual_pnl)) FILTER (WHERE cardinality(e.marks) = 0),
       sum(abs(e.unexplained_pnl)) FILTER (WHERE cardinality(e.marks) = 0),
       max(abs(e.unexplained_pnl)) FILTER (WHERE cardinality(e.marks) = 0),
       (array_agg(e.ts ORDER BY abs(e.unexplained_pnl) DESC, e.ts)
           FILTER (WHERE cardinality(e.marks) = 0))[1]
FROM pnl_explain e
WHERE e.account = p_account AND e.ts >= p_start AND e.ts < p_end
HAVING count(*) > 0
$sums$;

-- One account's score of the UTC day starting at p_day, from its raw intervals, as migration
-- 007's view computed it (and collector/explain.py day_score): explained_share = 1 -
-- Σ|unexplained| / Σ|actual| over the scored intervals; spearman = the Pearson correlation of
-- the ranks of explained and actual, ties at their average rank, NULL under three; the worst
-- interval's |unexplained| and its end (the earliest of equals); the intervals not scored, in
-- all and by mark. No row for a day without intervals.
CREATE FUNCTION pnl_explain_day_score(p_account text, p_day timestamptz)
RETURNS TABLE (
    scored bigint, not_scored bigint, explained_share float8, spearman float8,
    worst_unexplained float8, worst_at timestamptz, positions_changed bigint,
    pnl_rolled_over bigint, input_missing bigint)
LANGUAGE sql STABLE AS $score$
SELECT d.scored, d.not_scored, 1 - d.abs_unexplained_pnl / nullif(d.abs_actual_pnl, 0),
       c.spearman, d.worst_unexplained, d.worst_at, d.positions_changed, d.pnl_rolled_over,
       d.input_missing
FROM pnl_explain_sums(p_account, p_day, p_day + interval '1 day') d
CROSS JOIN (
    SELECT CASE WHEN count(*) >= 3 THEN corr(r.explained_ranks, r.actual_ranks) END AS spearman
    FROM (
        -- rank() is the first rank of a value's ties and cume_dist() x N the last: their sum
        -- is twice the average rank, and a correlation does not change with the scale (one
        -- sort per rank, where counting the ties took a second).
        SELECT rank() OVER by_explained
                 + cume_dist() OVER by_explained * count(*) OVER () AS explained_ranks,
               rank() OVER by_actual
                 + cume_dist() OVER by_actual * count(*) OVER () AS actual_ranks
        FROM pnl_explain e
        WHERE e.account = p_account AND e.ts >= p_day AND e.ts < p_day + interval '1 day'
          AND cardinality(e.marks) = 0
        WINDOW by_explained AS (ORDER BY e.explained_pnl), by_actual AS (ORDER BY e.actual_pnl)
    ) r
) c
$score$;

DROP VIEW pnl_explain_rollup;
DROP VIEW pnl_explain_daily;

-- 007's columns first, as they were; then the residual, the share, the worst interval and the
-- counts by mark. A stored bucket with no minute marked is read as stored; a marked one is
-- summed from the raw intervals (the newest minutes, a late replay).
CREATE VIEW pnl_explain_rollup AS
SELECT '1m'::text AS width, r.account, r.bucket, r.currency, r.scored::bigint AS scored,
       r.not_scored::bigint AS not_scored, r.actual_pnl, r.explained_pnl, r.delta_pnl,
       r.gamma_pnl, r.theta_pnl, r.vega_pnl, r.linear_pnl, r.unexplained_pnl,
       1 - r.abs_unexplained_pnl / nullif(r.abs_actual_pnl, 0) AS explained_share,
       r.worst_unexplained, r.worst_at, r.positions_changed::bigint AS positions_changed,
       r.pnl_rolled_over::bigint AS pnl_rolled_over, r.input_missing::bigint AS input_missing
FROM pnl_explain_1m r
WHERE NOT EXISTS (
    SELECT FROM pnl_explain_pending p WHERE p.account = r.account AND p.bucket = r.bucket)
UNION ALL
SELECT '1h', r.account, r.bucket, r.currency, r.scored, r.not_scored, r.actual_pnl,
       r.explained_pnl, r.delta_pnl, r.gamma_pnl, r.theta_pnl, r.vega_pnl, r.linear_pnl,
       r.unexplained_pnl, 1 - r.abs_unexplained_pnl / nullif(r.abs_actual_pnl, 0),
       r.worst_unexplained, r.worst_at, r.positions_changed, r.pnl_rolled_over, r.input_missing
FROM pnl_explain_1h r
WHERE NOT EXISTS (
    SELECT FROM pnl_explain_pending p
    WHERE p.account = r.account AND p.bucket >= r.bucket AND p.bucket < r.bucket + interval '1 hour')
UNION ALL
SELECT '1d', r.account, r.bucket, r.currency, r.scored, r.not_scored, r.actual_pnl,
       r.explained_pnl, r.delta_pnl, r.gamma_pnl, r.theta_pnl, r.vega_pnl, r.linear_pnl,
       r.unexplained_pnl, 1 - r.abs_unexplained_pnl / nullif(r.abs_actual_pnl, 0),
       r.worst_unexplained, r.worst_at, r.positions_changed, r.pnl_rolled_over, r.input_missing
FROM pnl_explain_1d r
WHERE NOT EXISTS (
    SELECT FROM pnl_explain_pending p
    WHERE p.account = r.account AND p.bucket >= r.bucket AND p.bucket < r.bucket + interval '1 day')
UNION ALL
SELECT d.width, d.account, d.bucket, s.currency, s.scored, s.not_scored, s.actual_pnl,
       s.explained_pnl, s.delta_pnl, s.gamma_pnl, s.theta_pnl, s.vega_pnl, s.linear_pnl,
       s.unexplained_pnl, 1 - s.abs_unexplained_pnl / nullif(s.abs_actual_pnl, 0),
       s.worst_unexplained, s.worst_at, s.positions_changed, s.pnl_rolled_over, s.input_missing
FROM (
    SELECT DISTINCT w.width, w.step, p.account,
           date_bin(w.step, p.bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket
    FROM pnl_explain_pending p
    CROSS JOIN (VALUES ('1m'::text, INTERVAL '1 minute'), ('1h', INTERVAL '1 hour'),
                       ('1d', INTERVAL '1 day')) AS w(width, step)
) d
CROSS JOIN LATERAL pnl_explain_sums(d.account, d.bucket, d.bucket + d.step) s;
COMMENT ON VIEW pnl_explain_rollup IS
    'the P&L explain per account and minute, hour or day (width 1m, 1h, 1d): pnl_explain_1m, _1h, _1d, with the buckets not rolled up yet summed from pnl_explain';

-- 007's columns first, then the counts by mark. A day scored once it was over, with no minute
-- marked since, is read as stored; the others (today, a day not scored yet, a late replay)
-- are scored from the raw intervals.
CREATE VIEW pnl_explain_daily AS
SELECT d.account, (d.bucket AT TIME ZONE 'UTC')::date AS day, d.scored::bigint AS scored,
       d.not_scored::bigint AS not_scored,
       1 - d.abs_unexplained_pnl / nullif(d.abs_actual_pnl, 0) AS explained_share,
       d.spearman, d.worst_unexplained, d.worst_at,
       d.positions_changed::bigint AS positions_changed,
       d.pnl_rolled_over::bigint AS pnl_rolled_over, d.input_missing::bigint AS input_missing
FROM pnl_explain_1d d
WHERE d.scored_at IS NOT NULL AND NOT EXISTS (
    SELECT FROM pnl_explain_pending p
    WHERE p.account = d.account AND p.bucket >= d.bucket AND p.bucket < d.bucket + interval '1 day')
UNION ALL
SELECT o.account, (o.bucket AT TIME ZONE 'UTC')::date, s.scored, s.not_scored,
       s.explained_share, s.spearman, s.worst_unexplained, s.worst_at, s.positions_changed,
       s.pnl_rolled_over, s.input_missing
FROM (
    SELECT account, date_trunc('day', bucket, 'UTC') AS bucket FROM pnl_explain_pending
    UNION
    SELECT account, bucket FROM pnl_explain_1d WHERE scored_at IS NULL
) o
CROSS JOIN LATERAL pnl_explain_day_score(o.account, o.bucket) s;
COMMENT ON VIEW pnl_explain_daily IS
    'per account and UTC day: the P&L explain score of the scored intervals (docs/pnl-explain.md); pnl_explain_1d once the day is scored, else from pnl_explain';
