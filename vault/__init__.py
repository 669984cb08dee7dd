"""The vault core: keys, envelope crypto, sealed fields, blind indexes, the audit log, signing,
health and the shared error type. It imports no other app of the project."""
