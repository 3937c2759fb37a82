-- Format 3 snapshots: a row whose cost stays flat per underlying (docs/scaling.md, "Lean
-- snapshots"). What a format-3 row says is what a format-2 row said; it is written shorter:
-- - `completeness` holds only the figures whose counts are not the complete ones (NULL when
--   every figure is complete); complete means every counted position contributed: every
--   position for dollar and beta delta, every option for gamma, theta and vega.
-- - the underlyings are three parallel arrays instead of the `underlyings` jsonb (NULL):
--   `underlying_symbols`, `underlying_figures` (one row of seven numbers per symbol, in the order
--   below), `underlying_counts` (position_count, option_count, options_with_greeks), and
--   `underlying_completeness` ({symbol: partial completeness}, NULL when all are complete).
-- jsonb keeps every number as a decimal of up to 17 digits (16-19 bytes with its entry) and
-- every key once per underlying; float8 arrays keep 8 bytes a number, and PostgreSQL reads them
-- from the JSON line with one call.
-- Readers see every row in its full form, whatever its format, through the view `snapshots`
-- (completeness and underlyings written out as format 2 wrote them) and `underlying_greeks`.
ALTER TABLE portfolio_greeks
    ADD COLUMN underlying_symbols      text[],
    ADD COLUMN underlying_figures      double precision[],
    ADD COLUMN underlying_counts       integer[],
    ADD COLUMN underlying_completeness jsonb,
    ALTER COLUMN underlyings DROP NOT NULL;

COMMENT ON COLUMN portfolio_greeks.underlyings IS
    'formats 1 and 2: per underlying symbol, its figures, completeness and counts; NULL in format 3 (see underlying_symbols, and the view snapshots)';
COMMENT ON COLUMN portfolio_greeks.completeness IS
    'format 2: {figure: {contributing, missing, reasons: {reason: n}}} for the five figures; format 3: only the figures that are not complete (NULL: all complete), see full_completeness()';
-- The words of migration 002 said "change of dollar delta for a 1 % move", which it is not.
COMMENT ON COLUMN portfolio_greeks.net_dollar_gamma IS
    'base currency: Σ gamma × underlying price² / 100 × qty × multiplier / magnifier × fx, the delta a 1 % rise of every underlying adds, valued at today''s price; the gamma P&L of that move is 0.005 × this';
COMMENT ON COLUMN portfolio_greeks.underlying_symbols IS 'format 3: the underlyings held, one per row of underlying_figures and underlying_counts';
COMMENT ON COLUMN portfolio_greeks.underlying_figures IS
    'format 3: per underlying [net_dollar_delta, net_dollar_gamma, net_theta, net_vega, net_beta_delta, net_delta, net_gamma]; NULL elements unknown';
COMMENT ON COLUMN portfolio_greeks.underlying_counts IS 'format 3: per underlying [position_count, option_count, options_with_greeks]';
COMMENT ON COLUMN portfolio_greeks.underlying_completeness IS
    'format 3: {symbol: the figures of that underlying that are not complete}; NULL when all are complete';

-- format_version may now be 3. The old check goes from the table and from every partition that
-- kept a copy of its own (the partition migration 004 made of the original table).
DO $check$
DECLARE
    holder record;
BEGIN
    FOR holder IN
        SELECT c.conrelid::regclass AS relation, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'c'
          AND c.conrelid IN (SELECT 'portfolio_greeks'::regclass
                             UNION ALL SELECT inhrelid FROM pg_inherits
                             WHERE inhparent = 'portfolio_greeks'::regclass)
          AND pg_get_constraintdef(c.oid) LIKE '%format_version = ANY%'
        ORDER BY c.conrelid = 'portfolio_greeks'::regclass DESC
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', holder.relation, holder.conname);
    END LOOP;
END
$check$;
ALTER TABLE portfolio_greeks
    ADD CONSTRAINT portfolio_greeks_format_version_check CHECK (format_version IN (1, 2, 3));

-- A figure's full completeness from a format-3 partial one: each figure the partial does not
-- name is complete (its counted positions all contributed: every position for dollar, beta and
-- share-equivalent delta, every option for the others); one it names as null is unknown.
-- `figures`: the five of a snapshot, or an underlying's seven (its share-equivalents too).
-- shared/records.py complete_counts() says the same in Python.
CREATE FUNCTION full_completeness(
    partial jsonb, position_count integer, option_count integer,
    figures text[] DEFAULT ARRAY['net_dollar_delta', 'net_dollar_gamma', 'net_theta', 'net_vega',
                                 'net_beta_delta'])
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(f.figure, coalesce(
        partial -> f.figure,
        jsonb_build_object(
            'contributing', CASE WHEN f.figure IN ('net_dollar_delta', 'net_beta_delta', 'net_delta')
                                 THEN position_count ELSE option_count END,
            'missing', 0,
            'reasons', '{}'::jsonb))), '{}'::jsonb)
    FROM unnest(figures) AS f(figure)
    WHERE partial IS NULL OR NOT partial ? f.figure OR jsonb_typeof(partial -> f.figure) <> 'null'
$$;

-- One row per underlying of a snapshot, from either form: the jsonb of formats 1 and 2, or the
-- arrays of format 3 (a row has one or the other).
CREATE FUNCTION snapshot_underlyings(
    underlyings jsonb, symbols text[], figures double precision[], counts integer[],
    incomplete jsonb)
RETURNS TABLE (
    underlying text, net_dollar_delta double precision, net_dollar_gamma double precision,
    net_theta double precision, net_vega double precision, net_beta_delta double precision,
    net_delta double precision, net_gamma double precision, completeness jsonb,
    position_count integer, option_count integer, options_with_greeks integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT u.key, (u.value->>'net_dollar_delta')::float8, (u.value->>'net_dollar_gamma')::float8,
        (u.value->>'net_theta')::float8, (u.value->>'net_vega')::float8,
        (u.value->>'net_beta_delta')::float8, (u.value->>'net_delta')::float8,
        (u.value->>'net_gamma')::float8, u.value->'completeness',
        (u.value->>'position_count')::integer, (u.value->>'option_count')::integer,
        (u.value->>'options_with_greeks')::integer
    FROM jsonb_each(underlyings) u
    UNION ALL
    SELECT symbols[i], figures[i][1], figures[i][2], figures[i][3], figures[i][4], figures[i][5],
        figures[i][6], figures[i][7],
        full_completeness(incomplete -> symbols[i], counts[i][1], counts[i][2],
                          ARRAY['net_dollar_delta', 'net_dollar_gamma', 'net_theta', 'net_vega',
                                'net_beta_delta', 'net_delta', 'net_gamma']),
        counts[i][1], counts[i][2], counts[i][3]
    FROM generate_subscripts(symbols, 1) AS i
$$;

-- Every snapshot in its full form, whatever format stored it: the table's columns less format
-- 3's arrays, with `completeness` and `underlyings` as format 2 wrote them. Read this (or
-- underlying_greeks) rather than the table's jsonb and arrays.
CREATE VIEW snapshots AS
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
    g.stored_at
FROM portfolio_greeks g;
COMMENT ON VIEW snapshots IS
    'every snapshot with its completeness and underlyings in full, whatever format stored it';

-- Per underlying, one row per snapshot and symbol, from either form (same columns as before).
DROP VIEW underlying_greeks;
CREATE VIEW underlying_greeks AS
SELECT g.id AS snapshot_id, g.ts, g.account, g.mode, g.format_version, g.currency,
    u.underlying, u.net_delta, u.net_gamma, u.net_dollar_delta, u.net_dollar_gamma, u.net_theta,
    u.net_vega, u.net_beta_delta, u.completeness, u.position_count, u.option_count,
    u.options_with_greeks
FROM portfolio_greeks g
CROSS JOIN LATERAL snapshot_underlyings(g.underlyings, g.underlying_symbols, g.underlying_figures,
                                        g.underlying_counts, g.underlying_completeness) u;

-- The underlyings' share-equivalents have a completeness from format 3 on (NULL before): the
-- positions left out of them, in the bucket's last snapshot and at most, as for the five.
ALTER TABLE underlying_greeks_1m
    ADD COLUMN net_delta_missing     integer,
    ADD COLUMN net_delta_missing_max integer,
    ADD COLUMN net_gamma_missing     integer,
    ADD COLUMN net_gamma_missing_max integer;
ALTER TABLE underlying_greeks_1h
    ADD COLUMN net_delta_missing     integer,
    ADD COLUMN net_delta_missing_max integer,
    ADD COLUMN net_gamma_missing     integer,
    ADD COLUMN net_gamma_missing_max integer;
