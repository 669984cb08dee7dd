"""Reference clients of the vault's APIs (not part of the project's apps)."""
