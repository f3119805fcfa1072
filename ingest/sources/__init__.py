"""The source hop: mailboxes (IMAP, POP3, Maildir) -> bytes, and server-side filing after commit."""
