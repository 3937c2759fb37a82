-- History at scale: time-partitioned raw tables and rollups at 1 minute and 1 hour.
--
-- portfolio_greeks and api_logs become partitioned by range of ts, one partition per UTC day
-- (docs/scaling.md says why a day). Every unique key of a partitioned table includes ts: the
-- snapshot's primary key is its natural key (account, ts) (its id derives from the same pair,
-- so the id stays as a column without an index of its own); an api_log's is (id, ts).
--
-- An existing install migrates in place, without copying: the old table becomes one partition
-- spanning the days it holds (from the UTC day of its oldest row to the end of the day of its
-- newest) and is dropped whole once all of it is past retention. New days get day partitions,
-- made here for today and the next days, then kept ahead by the replayer's maintenance.
-- The new tables are made with LIKE the old ones, so every column an earlier migration added
-- is carried over with its type, default, check and comment.

-- Views on the old tables (migration 002's `underlying_greeks`) would follow them under their
-- new names: they are set aside here and made again, from their own definitions, at the end.
CREATE TEMP TABLE migration_004_views ON COMMIT DROP AS
SELECT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition,
    obj_description(v.oid, 'pg_class') AS comment
FROM pg_class v
WHERE v.relkind = 'v' AND v.oid IN (
    SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.refobjid IN ('portfolio_greeks'::regclass, 'api_logs'::regclass)
      AND r.ev_class <> d.refobjid);

DO $views$
DECLARE
    view_name text;
BEGIN
    FOR view_name IN SELECT name FROM migration_004_views LOOP
        EXECUTE format('DROP VIEW %s', view_name);
    END LOOP;
END
$views$;

DO $migrate$
DECLARE
    source text;
    key text;
    legacy_rows boolean;
    lo timestamptz;
    hi timestamptz;
    index_name text;
    today timestamptz := date_trunc('day', now(), 'UTC');
    day timestamptz;
BEGIN
    FOREACH source IN ARRAY ARRAY['portfolio_greeks', 'api_logs'] LOOP
        key := CASE source WHEN 'portfolio_greeks' THEN 'account, ts' ELSE 'id, ts' END;
        -- Free the names: the old table and its indexes step aside.
        EXECUTE format('ALTER TABLE %I RENAME TO %I', source, source || '_legacy');
        FOR index_name IN
            SELECT indexrelid::regclass::text FROM pg_index
            WHERE indrelid = (source || '_legacy')::regclass
        LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', index_name, left(index_name, 50) || '_legacy');
        END LOOP;
        EXECUTE format(
            'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS'
            ' INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (ts)',
            source, source || '_legacy');
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', source, key);

        EXECUTE format('SELECT EXISTS (SELECT FROM %I)', source || '_legacy') INTO legacy_rows;
        IF legacy_rows THEN
            EXECUTE format('SELECT date_trunc(''day'', min(ts), ''UTC''),'
                           ' date_trunc(''day'', max(ts), ''UTC'') + interval ''1 day'' FROM %I',
                           source || '_legacy') INTO lo, hi;
            -- A partition has the parent's primary key only: the old one (the uuid) goes first.
            FOR index_name IN
                SELECT conname FROM pg_constraint
                WHERE conrelid = (source || '_legacy')::regclass AND contype = 'p'
            LOOP
                EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', source || '_legacy', index_name);
            END LOOP;
            EXECUTE format('ALTER TABLE %I RENAME TO %I', source || '_legacy',
                           source || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'));
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           source, source || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'),
                           lo, hi);
            -- The old (account, ts DESC) index or unique key is redundant with the new key:
            -- whatever unique index of the old table the new key did not adopt goes. The parent's other indexes, made below, adopt their identical old ones.
            FOR index_name IN
                SELECT i.indexrelid::regclass::text FROM pg_index i
                WHERE i.indrelid = (source || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'))::regclass
                  AND NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = i.indexrelid)
                  AND (i.indisunique OR i.indexrelid::regclass::text = 'portfolio_greeks_account_ts_legacy')
            LOOP
                EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I',
                               source || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'), index_name);
                EXECUTE format('DROP INDEX IF EXISTS %I', index_name);
            END LOOP;
        ELSE
            EXECUTE format('DROP TABLE %I', source || '_legacy');
            hi := today;
        END IF;
        -- Today and the next 7 days, so rows can be stored before the replayer's first run.
        day := greatest(hi, today);
        WHILE day < today + interval '8 days' LOOP
            -- Snapshots compressed inline (database/history.py RAW_STORAGE says why).
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) %s',
                           source || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), source,
                           day, day + interval '1 day',
                           CASE source WHEN 'portfolio_greeks'
                                THEN 'WITH (toast_tuple_target = 128)' ELSE '' END);
            day := day + interval '1 day';
        END LOOP;
    END LOOP;
END
$migrate$;

DO $views$
DECLARE
    saved record;
BEGIN
    FOR saved IN SELECT * FROM migration_004_views LOOP
        EXECUTE format('CREATE VIEW %s AS %s', saved.name, saved.definition);
        IF saved.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW %s IS %L', saved.name, saved.comment);
        END IF;
    END LOOP;
END
$views$;

-- A row with no partition of its own (a replay of days the maintenance has not made yet, a
-- clock far off) waits in the table's default partition instead of being refused; the
-- maintenance makes its partition and moves it in when its day is inside retention.
CREATE TABLE portfolio_greeks_default PARTITION OF portfolio_greeks DEFAULT
    WITH (toast_tuple_target = 128);
CREATE TABLE api_logs_default PARTITION OF api_logs DEFAULT;

-- Indexes on the parents: built on each new partition; the old partition's identical ones
-- are attached, not rebuilt.
-- The primary key (account, ts) serves "one account over a time range" and "latest per account".
CREATE INDEX portfolio_greeks_ts_brin ON portfolio_greeks USING brin (ts);
CREATE INDEX api_logs_ts ON api_logs (ts DESC);
-- An event's id is unique, but a partitioned table's unique keys must hold ts: the sink looks
-- the id up before inserting (an event re-emitted after a crash keeps its id, not its time).
CREATE INDEX api_logs_id ON api_logs (id);
CREATE INDEX api_logs_event_ts ON api_logs (event, ts DESC);
CREATE INDEX api_logs_problems ON api_logs (ts DESC) WHERE level IN ('warning', 'error', 'critical');

-- Rollups: one row per account (and per account and underlying) per minute and per hour, with
-- the same names as the snapshot: a figure's column is its last value in the bucket, `_min` and
-- `_max` its extremes (NULL when every snapshot of the bucket had it unknown); `snapshots`
-- counts the rows the bucket was made from (12 a minute when every tick was stored);
-- `format_version` and `currency` are the last snapshot's, so the bucket says what its money
-- is in; `<figure>_missing` and `_missing_max` count the positions left out of a format-2
-- figure, in the last snapshot and at most (the completeness jsonb would triple a row). (The one bucket in which a bridge
-- moved from format 1 to 2 has extremes over both formats: its `format_version` is the last.)
-- Kept in step with database/history.py, which computes them.
CREATE TABLE portfolio_greeks_1m (
    account                      text NOT NULL,
    bucket                       timestamptz NOT NULL,
    snapshots                    integer NOT NULL CHECK (snapshots > 0),
    last_ts                      timestamptz NOT NULL,
    net_delta                    double precision,
    net_delta_min                double precision,
    net_delta_max                double precision,
    net_gamma                    double precision,
    net_gamma_min                double precision,
    net_gamma_max                double precision,
    net_dollar_delta             double precision,
    net_dollar_delta_min         double precision,
    net_dollar_delta_max         double precision,
    net_dollar_gamma             double precision,
    net_dollar_gamma_min         double precision,
    net_dollar_gamma_max         double precision,
    net_theta                    double precision,
    net_theta_min                double precision,
    net_theta_max                double precision,
    net_vega                     double precision,
    net_vega_min                 double precision,
    net_vega_max                 double precision,
    net_beta_delta               double precision,
    net_beta_delta_min           double precision,
    net_beta_delta_max           double precision,
    net_liquidation              double precision,
    net_liquidation_min          double precision,
    net_liquidation_max          double precision,
    unrealized_pnl               double precision,
    unrealized_pnl_min           double precision,
    unrealized_pnl_max           double precision,
    daily_pnl                    double precision,
    daily_pnl_min                double precision,
    daily_pnl_max                double precision,
    format_version               smallint,
    currency                     text,
    net_dollar_delta_missing     integer,
    net_dollar_delta_missing_max integer,
    net_dollar_gamma_missing     integer,
    net_dollar_gamma_missing_max integer,
    net_theta_missing            integer,
    net_theta_missing_max        integer,
    net_vega_missing             integer,
    net_vega_missing_max         integer,
    net_beta_delta_missing       integer,
    net_beta_delta_missing_max   integer,
    position_count               integer,
    option_count                 integer,
    options_with_greeks          integer,
    options_with_greeks_min      integer,
    stalest_greek_age_s          double precision,
    stalest_greek_age_s_max      double precision,
    PRIMARY KEY (account, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE portfolio_greeks_1h (LIKE portfolio_greeks_1m INCLUDING ALL) PARTITION BY RANGE (bucket);

CREATE TABLE underlying_greeks_1m (
    account                      text NOT NULL,
    underlying                   text NOT NULL,
    bucket                       timestamptz NOT NULL,
    snapshots                    integer NOT NULL CHECK (snapshots > 0),
    last_ts                      timestamptz NOT NULL,
    net_delta                    double precision,
    net_delta_min                double precision,
    net_delta_max                double precision,
    net_gamma                    double precision,
    net_gamma_min                double precision,
    net_gamma_max                double precision,
    net_dollar_delta             double precision,
    net_dollar_delta_min         double precision,
    net_dollar_delta_max         double precision,
    net_dollar_gamma             double precision,
    net_dollar_gamma_min         double precision,
    net_dollar_gamma_max         double precision,
    net_theta                    double precision,
    net_theta_min                double precision,
    net_theta_max                double precision,
    net_vega                     double precision,
    net_vega_min                 double precision,
    net_vega_max                 double precision,
    net_beta_delta               double precision,
    net_beta_delta_min           double precision,
    net_beta_delta_max           double precision,
    net_dollar_delta_missing     integer,
    net_dollar_delta_missing_max integer,
    net_dollar_gamma_missing     integer,
    net_dollar_gamma_missing_max integer,
    net_theta_missing            integer,
    net_theta_missing_max        integer,
    net_vega_missing             integer,
    net_vega_missing_max         integer,
    net_beta_delta_missing       integer,
    net_beta_delta_missing_max   integer,
    position_count               integer,
    option_count                 integer,
    options_with_greeks          integer,
    options_with_greeks_min      integer,
    PRIMARY KEY (account, underlying, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE underlying_greeks_1h (LIKE underlying_greeks_1m INCLUDING ALL) PARTITION BY RANGE (bucket);

-- The minutes that gained rows since the rollups were last brought up to date: marked in the
-- transaction that stores the rows, consumed by the replayer's maintenance.
CREATE TABLE rollup_pending (
    account  text NOT NULL,
    bucket   timestamptz NOT NULL,
    PRIMARY KEY (account, bucket)
);

-- Every statement that stores snapshots marks the minutes it touched, in its own transaction,
-- whoever stores them (writer, replayer, an operator's INSERT) and however late. A duplicate
-- absorbed by ON CONFLICT is not in the transition table and marks nothing.
CREATE FUNCTION portfolio_greeks_mark_rollups() RETURNS trigger LANGUAGE plpgsql AS $mark$
BEGIN
    INSERT INTO rollup_pending (account, bucket)
    SELECT DISTINCT account, date_trunc('minute', ts) FROM stored
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$mark$;
CREATE TRIGGER portfolio_greeks_rollups AFTER INSERT ON portfolio_greeks
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT
    EXECUTE FUNCTION portfolio_greeks_mark_rollups();

-- Rows stored before this migration are rolled up by the first maintenance runs.
INSERT INTO rollup_pending (account, bucket)
SELECT DISTINCT account, date_trunc('minute', ts) FROM portfolio_greeks;

-- Rollup partitions are months; the current and next one exist from the start, a default one
-- for the rest (as for the raw tables).
CREATE TABLE portfolio_greeks_1m_default PARTITION OF portfolio_greeks_1m DEFAULT;
CREATE TABLE portfolio_greeks_1h_default PARTITION OF portfolio_greeks_1h DEFAULT;
CREATE TABLE underlying_greeks_1m_default PARTITION OF underlying_greeks_1m DEFAULT;
CREATE TABLE underlying_greeks_1h_default PARTITION OF underlying_greeks_1h DEFAULT;
DO $rollups$
DECLARE
    target text;
    month timestamptz;
BEGIN
    FOREACH target IN ARRAY ARRAY['portfolio_greeks_1m', 'portfolio_greeks_1h',
                                  'underlying_greeks_1m', 'underlying_greeks_1h'] LOOP
        month := date_trunc('month', coalesce((SELECT min(ts) FROM portfolio_greeks), now()), 'UTC');
        WHILE month < date_trunc('month', now(), 'UTC') + interval '2 months' LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           target || '_p' || to_char(month AT TIME ZONE 'UTC', 'YYYYMMDD'), target,
                           month, (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
            month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
        END LOOP;
    END LOOP;
END
$rollups$;
