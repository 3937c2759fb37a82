-- The P&L explain's positions as arrays in their interval's row (docs/pnl-explain.md,
-- "Storage"; docs/scaling.md, "Everything stored: the budget"), as migration 005 did for the
-- snapshot's underlyings. A row per position and interval cost 144 B a position a tick (a
-- tuple header, the key account, ts, conid and its index entry, for eight numbers): 62 % of all
-- an account of 10 underlyings stores. In its interval's row a position costs its numbers (8 B
-- each, none for an unknown one: an array's null bitmap holds it) and its conid.
--
-- - `position_conids`: the positions of the interval, one per row of the other two;
-- - `position_rows`: per position [delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl,
--   explained_pnl, actual_pnl] (shared/records.py EXPLAIN_POSITION_ROW, the line's order);
-- - `position_missing`: per position the input it lacked; NULL when none lacked one;
-- - `position_actual_missing`: per position why its own actual P&L is unknown although the
--   gateway gave it (migration 014's `actual_missing`); NULL when no position has a reason.
--
-- Money stays double precision: a position's interval P&L is not bounded (a convention read
-- wrong, which the explain exists to catch, makes it 100 times too large), and real holds the
-- cent only below $131,072.
--
-- Readers are unchanged: `pnl_explain_positions` becomes a view with the table's columns, in
-- its order, one row per position and interval. The rows stored before are moved into their
-- intervals' arrays (in conid order) and the table is dropped with its day partitions. A
-- position row without its interval (the maintenance stopped between dropping one table's day
-- and the other's: rows already past retention) is dropped with them.
ALTER TABLE pnl_explain
    ADD COLUMN position_conids  bigint[],
    ADD COLUMN position_rows    double precision[],
    ADD COLUMN position_missing text[],
    ADD COLUMN position_actual_missing text[];

COMMENT ON COLUMN pnl_explain.position_conids IS
    'the positions of the interval, one per row of position_rows (and element of position_missing); NULL: stored before migration 015 without positions';
COMMENT ON COLUMN pnl_explain.position_rows IS
    'per position_conids: [delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, explained_pnl, actual_pnl], base currency; NULL elements unknown or not applicable; read them through the view pnl_explain_positions';
COMMENT ON COLUMN pnl_explain.position_missing IS
    'per position_conids: the input the position lacked, NULL where none; NULL when no position lacked one';
COMMENT ON COLUMN pnl_explain.position_actual_missing IS
    'per position_conids: why its actual_pnl is NULL although the gateway gave the position''s daily P&L (pnl_currency_unstated or no_fx_rate, migration 014), NULL where none; NULL when no position has a reason';

UPDATE pnl_explain e
SET position_conids = p.conids, position_rows = p.figures, position_missing = p.missing,
    position_actual_missing = p.actual_missing
FROM (
    SELECT account, ts, array_agg(conid ORDER BY conid) AS conids,
        array_agg(ARRAY[delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, explained_pnl,
                        actual_pnl] ORDER BY conid) AS figures,
        CASE WHEN count(missing) > 0 THEN array_agg(missing ORDER BY conid) END AS missing,
        CASE WHEN count(actual_missing) > 0
             THEN array_agg(actual_missing ORDER BY conid) END AS actual_missing
    FROM pnl_explain_positions
    GROUP BY account, ts
) p
WHERE e.account = p.account AND e.ts = p.ts;

-- The view reads the arrays by position: they must run in step.
ALTER TABLE pnl_explain ADD CONSTRAINT pnl_explain_positions_in_step CHECK (
    coalesce(array_length(position_rows, 1), 0) = coalesce(cardinality(position_conids), 0)
    AND (position_rows IS NULL OR cardinality(position_rows) = 0
         OR array_length(position_rows, 2) = 7)
    AND (position_missing IS NULL
         OR cardinality(position_missing) = coalesce(cardinality(position_conids), 0))
    AND (position_actual_missing IS NULL
         OR cardinality(position_actual_missing) = coalesce(cardinality(position_conids), 0)));
ALTER TABLE pnl_explain ADD CONSTRAINT pnl_explain_position_actual_missing_check CHECK (
    array_remove(position_actual_missing, NULL) <@ ARRAY['pnl_currency_unstated', 'no_fx_rate']);

DROP TABLE pnl_explain_positions;

CREATE VIEW pnl_explain_positions AS
SELECT e.account, e.ts, e.position_conids[i] AS conid,
    e.position_rows[i][1] AS delta_pnl, e.position_rows[i][2] AS gamma_pnl,
    e.position_rows[i][3] AS theta_pnl, e.position_rows[i][4] AS vega_pnl,
    e.position_rows[i][5] AS linear_pnl, e.position_rows[i][6] AS explained_pnl,
    e.position_missing[i] AS missing, e.position_rows[i][7] AS actual_pnl,
    e.position_actual_missing[i] AS actual_missing
FROM pnl_explain e
CROSS JOIN LATERAL generate_subscripts(e.position_conids, 1) AS i;
COMMENT ON VIEW pnl_explain_positions IS
    'one row per position and interval of the P&L explain (account, ts, conid), from the arrays of pnl_explain (migration 015); joins position_legs on the same key';
