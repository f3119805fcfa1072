"""ackmail rules: stored decision -> outcome (rules engine, actions, dispatch outbox)."""
