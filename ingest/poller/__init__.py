"""The poller: leases -> a worker per mailbox folder -> passes over its new mail.

``service`` runs the configured mailboxes in one process; ``keeper`` holds this
poller's share of the folders (``book`` on SQLite, ``ingest.store.leases`` on
PostgreSQL); ``worker`` runs one folder's sessions with backoff; ``folder_pass``
holds the exactly-once order of one pass; ``upkeep`` runs the periodic jobs.
"""
