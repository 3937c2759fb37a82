-- Why a position's own actual P&L is unknown although the gateway gave its daily P&L (issue
-- "Risk beyond first order"): IBKR does not state the currency of reqPnLSingle's values, so
-- the change of a position in another currency than the account's base is not read as
-- either (`pnl_currency_unstated`); with the base currency or the position's unknown,
-- `no_fx_rate`. NULL: the actual is known, or the gateway gave no P&L of the position
-- (PORTAL). docs/pnl-explain.md, "Actual".
ALTER TABLE pnl_explain_positions ADD COLUMN actual_missing text
    CHECK (actual_missing IN ('pnl_currency_unstated', 'no_fx_rate'));
COMMENT ON COLUMN pnl_explain_positions.actual_missing IS
    'why actual_pnl is NULL although the gateway gave the position''s daily P&L: pnl_currency_unstated (not in the base currency; reqPnLSingle''s currency is not stated by IBKR) or no_fx_rate; NULL otherwise';
