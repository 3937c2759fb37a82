-- Scenario grids in real (float4) arrays: 4 bytes a number instead of 8 (docs/scenarios.md,
-- "Precision"; docs/benchmarks.md, "Storage budget"). A stored scenario P&L keeps 24 bits of
-- mantissa, 7 significant digits: read back, within 2^-23 of itself (1.2e-7: 12 cents on a P&L
-- of $1,000,000; half a unit in the last place stored, half more in its shortest text). A grid is
-- itself an approximation several orders of magnitude coarser: the rate and dividend yield the
-- gateway does not state move a scenario by up to 15 % of the mean P&L, and the revaluation
-- is tested against the simulator's to 1e-5 of the gross notional. The worst P&Ls keep
-- float8 (computed by the collector from the full-precision grid, as before), so an alert's
-- limit reads the figure exactly as computed. Rows stored before this migration are converted
-- once (rounded to float4 like the new ones).
ALTER TABLE scenario_pnl
    ALTER COLUMN grid TYPE real[],
    ALTER COLUMN beta_grid TYPE real[],
    ALTER COLUMN delta_gamma_10 TYPE real[],
    ALTER COLUMN underlying_grids TYPE real[],
    ALTER COLUMN underlying_delta_gamma_10 TYPE real[];

COMMENT ON COLUMN scenario_pnl.grid IS
    '60 P&Ls, each underlying moved by its own move; element 1 + (day x 3 + vol shift) x 10 + move; today''s unmoved value is 0 by construction; float4: 7 significant digits, each within 2^-23 of itself, worst_pnl is exact';
COMMENT ON COLUMN scenario_pnl.beta_grid IS
    '60 P&Ls, each underlying moved by its beta x the benchmark''s move (Risk Navigator''s beta-weighted view); positions without beta are missing (no_beta); float4: each within 2^-23 of itself';
COMMENT ON COLUMN scenario_pnl.delta_gamma_10 IS
    'the delta-gamma approximation (dollar delta x move + 0.5 gamma (move x price)^2) at -10 % and +10 %, beside grid''s full revaluation of the same moves; float4: each within 2^-23 of itself';
COMMENT ON COLUMN scenario_pnl.underlying_grids IS
    'one row of 60 per underlying_symbols, each underlying by its own move; a row of NULLs: nothing contributed; float4: each within 2^-23 of itself, underlying_worst_pnl is exact';
COMMENT ON COLUMN scenario_pnl.underlying_delta_gamma_10 IS 'one row of 2 per underlying_symbols; float4: each within 2^-23 of itself';
