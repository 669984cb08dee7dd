"""Dynamic-schema encrypted profiles, events and retention (issue "Profiles")."""
