"""DESIGN.md invariant 2: nothing outside the access gate decrypts personal data."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVES = {"decrypt", "decrypt_for_subject", "decrypt_many", "decrypt_standalone", "unseal", "unseal_many"}
# The gate itself (every module of the package); the modules that define the primitives; the key
# provider, which unwraps data keys (no personal data); and the audit log, which decrypts its own
# details (ids and reasons, not profile data) for the person's access request.
GATE = "profiles/gate/"
ALLOWED = {"vault/crypto/", "vault/fields.py", "vault/keys.py", "vault/audit/details.py"}  # "x/": a package
# allauth's MFA adapter unseals a TOTP secret or recovery seed, and the partners app a client's
# webhook signing secret (credentials, not personal data), each time it needs one: that
# primitive only.
ALLOWED_ONLY = {"accounts/mfa.py": {"decrypt_standalone"}, "partners/secrets.py": {"decrypt_standalone"}}
APPS = ("vault", "accounts", "profiles", "consent", "rights", "partners", "portal", "demo", "config")


def _in_gate(module: str) -> bool:
    return module.startswith(GATE)


def _allowed(module: str) -> bool:
    return any(module.startswith(entry) if entry.endswith("/") else module == entry for entry in ALLOWED)


def _scan(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({module: decryption primitives it calls or imports}, {module: gate modules it imports})."""
    callers: dict[str, set[str]] = {}
    gate_imports: dict[str, set[str]] = {}
    for app in APPS:
        for path in (root / app).rglob("*.py") if (root / app).is_dir() else ():
            module = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                called = node.func if isinstance(node, ast.Call) else None
                name = getattr(called, "attr", None) or getattr(called, "id", None)
                imported = {a.name for a in node.names} & PRIMITIVES if isinstance(node, ast.ImportFrom) else set()
                if name in PRIMITIVES or imported:
                    callers.setdefault(module, set()).add(name or ", ".join(sorted(imported)))
                # The gate's modules hold helpers that decrypt without the checks: outside the
                # package, only `profiles.gate` itself is imported.
                inner = {name for name in _imported(node, module) if name.startswith("profiles.gate.")}
                inner = {name for name in inner if _is_module(root, name)}
                if inner:
                    gate_imports.setdefault(module, set()).update(inner)
    return callers, gate_imports


def _imported(node: ast.AST, module: str) -> list[str]:
    """The dotted names `node` imports, and each `from` import's names as submodules."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = module.removesuffix(".py").split("/")[: -node.level]
        base = ".".join([*package, *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _is_module(root: Path, dotted: str) -> bool:
    path = root / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _outside(root: Path) -> dict[str, set[str]]:
    """The modules outside the gate that decrypt, or reach into the gate's modules."""
    callers, gate_imports = _scan(root)
    found = {
        module: names - ALLOWED_ONLY.get(module, set())
        for module, names in callers.items()
        if not _in_gate(module) and not _allowed(module) and names - ALLOWED_ONLY.get(module, set())
    }
    for module, names in gate_imports.items():
        if not _in_gate(module):
            found.setdefault(module, set()).update(names)
    return found


def test_only_the_gate_calls_the_decryption_primitives():
    outside = _outside(ROOT)
    assert outside == {}, f"decryption outside the access gate: {outside}"


def test_the_check_sees_the_gates_own_calls():
    """The scan must find what it looks for, or the test above could never fail."""
    callers, _ = _scan(ROOT)
    assert any(_in_gate(module) for module in callers)
    assert "profiles/gate/decrypt.py" in callers


def test_the_check_flags_decryption_and_the_gates_modules_elsewhere(tmp_path):
    """A decrypt call outside the package (even next to it), or an import of one of its modules,
    is flagged; the same call inside the package is not."""
    files = {
        "profiles/gate/__init__.py": "from profiles.gate.reads import profile_read\n",
        "profiles/gate/decrypt.py": "from vault import crypto\ncrypto.decrypt_for_subject(1, [])\n",
        "profiles/gate/reads.py": "from profiles.gate.decrypt import decrypt_rows\n",
        "profiles/gate_extra.py": "from vault import crypto\ncrypto.decrypt_for_subject(1, [])\n",
        "profiles/services/merge.py": "from vault.fields import unseal\nfrom ..gate import reads\n",
        "portal/views.py": "from profiles.gate.decrypt import decrypt_rows\n",
        "accounts/social.py": "from profiles.gate import profile_read, social_pending_unseal\n",
        "demo/people.py": "import profiles.gate.reads\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _outside(tmp_path) == {
        "profiles/gate_extra.py": {"decrypt_for_subject"},
        "profiles/services/merge.py": {"unseal", "profiles.gate.reads"},
        "portal/views.py": {"profiles.gate.decrypt"},
        "demo/people.py": {"profiles.gate.reads"},
    }
