-- No planner statistics on the arrays and documents of the raw tables (issue "Lean snapshots").
-- Nothing filters or joins on them: queries read them whole or unnest them, and select rows by
-- account and time. Yet ANALYZE computed element statistics for every value of every sampled
-- row: 30,000 rows of a 10-underlying book hold 2.1 million figures. Autoanalyze runs on the
-- day's partition while it grows, on one of the 2 cores the writer and its backends share, and
-- the writer's latency stretched while it did (docs/scaling.md, "The writer at 8,000 rows/s").
-- A partition created later takes the parent's targets (database/history.py `_create`).
ALTER TABLE portfolio_greeks
    ALTER COLUMN underlyings SET STATISTICS 0,
    ALTER COLUMN completeness SET STATISTICS 0,
    ALTER COLUMN underlying_symbols SET STATISTICS 0,
    ALTER COLUMN underlying_figures SET STATISTICS 0,
    ALTER COLUMN underlying_counts SET STATISTICS 0,
    ALTER COLUMN underlying_completeness SET STATISTICS 0;

ALTER TABLE pnl_explain
    ALTER COLUMN marks SET STATISTICS 0,
    ALTER COLUMN missing SET STATISTICS 0,
    ALTER COLUMN underlying_symbols SET STATISTICS 0,
    ALTER COLUMN underlying_rows SET STATISTICS 0,
    ALTER COLUMN position_conids SET STATISTICS 0,
    ALTER COLUMN position_rows SET STATISTICS 0,
    ALTER COLUMN position_missing SET STATISTICS 0,
    ALTER COLUMN position_actual_missing SET STATISTICS 0;

ALTER TABLE expiry_greeks
    ALTER COLUMN bucket_figures SET STATISTICS 0,
    ALTER COLUMN completeness SET STATISTICS 0,
    ALTER COLUMN underlying_symbols SET STATISTICS 0,
    ALTER COLUMN underlying_figures SET STATISTICS 0,
    ALTER COLUMN underlying_linear SET STATISTICS 0,
    ALTER COLUMN underlying_counts SET STATISTICS 0,
    ALTER COLUMN underlying_completeness SET STATISTICS 0;

ALTER TABLE scenario_pnl
    ALTER COLUMN grid SET STATISTICS 0,
    ALTER COLUMN beta_grid SET STATISTICS 0,
    ALTER COLUMN delta_gamma_10 SET STATISTICS 0,
    ALTER COLUMN completeness SET STATISTICS 0,
    ALTER COLUMN underlying_symbols SET STATISTICS 0,
    ALTER COLUMN underlying_grids SET STATISTICS 0,
    ALTER COLUMN underlying_worst_pnl SET STATISTICS 0,
    ALTER COLUMN underlying_worst_scenario SET STATISTICS 0,
    ALTER COLUMN underlying_delta_gamma_10 SET STATISTICS 0,
    ALTER COLUMN underlying_completeness SET STATISTICS 0,
    ALTER COLUMN worst_leg_conids SET STATISTICS 0,
    ALTER COLUMN worst_leg_pnl SET STATISTICS 0,
    ALTER COLUMN beta_worst_leg_conids SET STATISTICS 0,
    ALTER COLUMN beta_worst_leg_pnl SET STATISTICS 0;
