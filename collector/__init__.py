"""The collector: every 5 s, each account's net Greeks (and what goes with them: Greeks by expiry,
the legs, daily betas, scenario grids, connection events) from the gateway into the spool."""
