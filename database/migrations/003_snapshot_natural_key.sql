-- A snapshot's natural key: one row per account and tick, whatever its id. Ids are derived from
-- (account, tick), so two rows share both only if some producer derived an id differently; the
-- inserts then absorb the second one (ON CONFLICT DO NOTHING on either key), like any
-- duplicate. Rows stored before this key existed are made to agree with it: of two rows for the
-- same account and tick, the first stored stays.
DELETE FROM portfolio_greeks AS later
USING portfolio_greeks AS earlier
WHERE later.account = earlier.account
  AND later.ts = earlier.ts
  AND (later.stored_at, later.id) > (earlier.stored_at, earlier.id);

-- The same shape as the index it replaces ("account X over the last hour", "latest snapshot
-- per account"), now unique.
CREATE UNIQUE INDEX portfolio_greeks_account_ts_key ON portfolio_greeks (account, ts DESC);
DROP INDEX portfolio_greeks_account_ts;
