"""The parse hop: raw bytes -> ParsedMessage (kind, sender, reply text, intent). Pure."""
