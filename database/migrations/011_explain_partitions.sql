-- The P&L explain's tables (migration 007) partitioned by UTC day like the other tables beside
-- the snapshots (006, 008), so the replayer's maintenance makes their days ahead and drops them
-- past the raw retention (database/history.py BESIDE_SNAPSHOTS). And, at the end, the legs of
-- the scenario grid's worst loss in scenario_pnl.
--
-- An existing install keeps every row: the tables step aside, the partitioned ones are made
-- LIKE them (every column, generated residual, default, check and comment carried over), a day
-- partition is made for each day they hold, the rows are copied in and the old tables dropped.
-- A copy rather than 004's attaching in place: the explain is days old at most when this runs,
-- and a day partition per old day is dropped on time by the retention, where one partition
-- spanning them all would outlive its first day.
--
-- What changes: every unique key of a partitioned table holds ts, so the explain's id is unique
-- with its ts (as scenario_pnl's); and the positions' foreign key to their interval goes, since
-- PostgreSQL refuses to drop a partition of a table another one references. Both tables' days
-- are dropped by the same maintenance at the same retention, and the sink stores an interval
-- and its positions in one transaction, so no position outlives its interval for long.

-- The views over pnl_explain (007's rollup and day score) are set aside and made again, from
-- their own definitions, at the end (as migration 004 did).
CREATE TEMP TABLE migration_011_views ON COMMIT DROP AS
SELECT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition,
    obj_description(v.oid, 'pg_class') AS comment
FROM pg_class v
WHERE v.relkind = 'v' AND v.oid IN (
    SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.refobjid IN ('pnl_explain'::regclass, 'pnl_explain_positions'::regclass)
      AND r.ev_class <> d.refobjid);

DO $views$
DECLARE
    view_name text;
BEGIN
    FOR view_name IN SELECT name FROM migration_011_views LOOP
        EXECUTE format('DROP VIEW %s', view_name);
    END LOOP;
END
$views$;

DO $migrate$
DECLARE
    source text;
    legacy text;
    table_comment text;
    constraint_name text;
    columns text;
    today timestamptz := date_trunc('day', now(), 'UTC');
    day timestamptz;
BEGIN
    FOREACH source IN ARRAY ARRAY['pnl_explain_positions', 'pnl_explain'] LOOP
        legacy := source || '_legacy';
        table_comment := obj_description(source::regclass, 'pg_class');
        EXECUTE format('ALTER TABLE %I RENAME TO %I', source, legacy);
        -- Its keys (and the foreign key) go with it: their index names are the new keys'.
        FOR constraint_name IN
            SELECT conname FROM pg_constraint
            WHERE conrelid = legacy::regclass AND contype IN ('p', 'u', 'f')
            ORDER BY contype = 'f' DESC  -- the foreign key before the key it leans on
        LOOP
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', legacy, constraint_name);
        END LOOP;
        EXECUTE format(
            'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS'
            ' INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)'
            ' PARTITION BY RANGE (ts)', source, legacy);
        IF source = 'pnl_explain' THEN
            ALTER TABLE pnl_explain ADD PRIMARY KEY (account, ts), ADD UNIQUE (id, ts);
        ELSE
            ALTER TABLE pnl_explain_positions ADD PRIMARY KEY (account, ts, conid);
        END IF;
        IF table_comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON TABLE %I IS %L', source, table_comment);
        END IF;
        -- A row of a day without its partition waits here; the maintenance moves it in.
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', source || '_default', source);
        -- A day partition for each day of the old rows, today and the next 7 days.
        FOR day IN EXECUTE format(
            'SELECT date_trunc(''day'', ts, ''UTC'') FROM %I'
            ' UNION SELECT generate_series(%L::timestamptz, %L, interval ''1 day'')',
            legacy, today, today + interval '7 days')
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           source || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), source,
                           day, day + interval '1 day');
        END LOOP;
        -- Every stored column but the generated residual, which PostgreSQL computes again.
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
        FROM pg_attribute
        WHERE attrelid = legacy::regclass AND attnum > 0 AND NOT attisdropped
          AND attgenerated = '';
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM %I', source, columns, columns, legacy);
        EXECUTE format('DROP TABLE %I', legacy);
    END LOOP;
END
$migrate$;

DO $views$
DECLARE
    saved record;
BEGIN
    FOR saved IN SELECT * FROM migration_011_views LOOP
        EXECUTE format('CREATE VIEW %s AS %s', saved.name, saved.definition);
        IF saved.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW %s IS %L', saved.name, saved.comment);
        END IF;
    END LOOP;
END
$views$;

-- The worst loss drilled down to the leg (docs/scenarios.md): each contributing position's P&L
-- at the account grid's worst scenario, as two parallel arrays (8 bytes a conid, 8 a P&L: about
-- 16 bytes a position a grid), own moves and beta-weighted. NULL: not computed (rows stored
-- before) or no grid. They add up to worst_pnl (beta_worst_pnl): shared/records.py refuses a
-- line whose legs do not.
ALTER TABLE scenario_pnl
    ADD COLUMN worst_leg_conids      bigint[],
    ADD COLUMN worst_leg_pnl         double precision[],
    ADD COLUMN beta_worst_leg_conids bigint[],
    ADD COLUMN beta_worst_leg_pnl    double precision[];
COMMENT ON COLUMN scenario_pnl.worst_leg_conids IS
    'the contributing positions (conids), the largest loss at worst_scenario first; worst_leg_pnl holds their P&Ls, which add up to worst_pnl';
COMMENT ON COLUMN scenario_pnl.worst_leg_pnl IS
    'per worst_leg_conids: the position''s P&L at worst_scenario, base currency';
COMMENT ON COLUMN scenario_pnl.beta_worst_leg_conids IS
    'as worst_leg_conids, at beta_worst_scenario of beta_grid';
COMMENT ON COLUMN scenario_pnl.beta_worst_leg_pnl IS
    'per beta_worst_leg_conids: the position''s P&L at beta_worst_scenario, base currency';
