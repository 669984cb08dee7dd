"""DESIGN.md invariant 2: nothing outside the access gate decrypts personal data."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVES = {"decrypt", "decrypt_for_subject", "decrypt_many", "decrypt_standalone", "unseal", "unseal_many"}
# The gate itself; the modules that define the primitives; the key provider, which unwraps data
# keys (no personal data); and the audit log, which decrypts its own details (ids and reasons,
# not profile data) for the person's access request.
ALLOWED = {"profiles/gate.py", "vault/crypto.py", "vault/fields.py", "vault/keys.py", "vault/audit/details.py"}
# allauth's MFA adapter unseals a TOTP secret or recovery seed (credentials, not personal data)
# for each code it checks: that primitive only.
ALLOWED_ONLY = {"accounts/mfa.py": {"decrypt_standalone"}}
APPS = ("vault", "accounts", "profiles", "consent", "rights", "partners")


def _callers() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py") if (ROOT / app).is_dir() else ():
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                called = node.func if isinstance(node, ast.Call) else None
                name = getattr(called, "attr", None) or getattr(called, "id", None)
                imported = {a.name for a in node.names} & PRIMITIVES if isinstance(node, ast.ImportFrom) else set()
                if name in PRIMITIVES or imported:
                    found.setdefault(str(path.relative_to(ROOT)), set()).add(name or ", ".join(sorted(imported)))
    return found


def test_only_the_gate_calls_the_decryption_primitives():
    outside = {
        module: names - ALLOWED_ONLY.get(module, set())
        for module, names in _callers().items()
        if module not in ALLOWED and names - ALLOWED_ONLY.get(module, set())
    }
    assert outside == {}, f"decryption outside the access gate: {outside}"


def test_the_check_sees_the_gates_own_calls():
    """The scan must find what it looks for, or the test above could never fail."""
    assert "profiles/gate.py" in _callers()
