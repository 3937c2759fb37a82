"""web package: the trader's dashboard, `/healthz` and `/metrics`, read-only over the bridge."""
