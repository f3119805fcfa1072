"""What every network client shares: the TLS context and the diagnosis of its certificates."""
