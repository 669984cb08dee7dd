"""Purposes, policy versions and the consent ledger (issue "Consent")."""
