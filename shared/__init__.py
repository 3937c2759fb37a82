"""Code every process of the bridge uses: settings, records, the spool, the buffer, logging."""
