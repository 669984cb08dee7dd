"""`python -m bench [NAME ...]`: run the benchmarks (all, or those whose name contains NAME).

They run against a fresh test database of the configured kind (`DATABASE_URL`, else SQLite),
never against the development data. Exit status 1 when a figure misses its target.
"""

import importlib
import inspect
import os
import pkgutil
import sys
import time
from collections.abc import Callable


def discover() -> list[tuple[str, Callable[[], list]]]:
    import bench

    found: list[tuple[str, Callable[[], list]]] = []
    for module_info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if module_info.name.startswith("bench_"):
            module = importlib.import_module(f"bench.{module_info.name}")
            found += [
                (f"{module_info.name}.{name}", fn)
                for name, fn in inspect.getmembers(module, inspect.isfunction)
                if name.startswith("bench_") and fn.__module__ == module.__name__
            ]
    return found


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    django.setup()
    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False)
    missed = 0
    try:
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        print(f"Benchmarks on {database}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        for name, fn in discover():
            if argv and not any(word in name for word in argv):
                continue
            started = time.perf_counter()
            figures = fn()
            print(f"\n{name} ({time.perf_counter() - started:.1f} s)")
            for figure in figures:
                print(figure.line())
                missed += figure.met is False
    finally:
        teardown_databases(old_config, verbosity=0)
    print(f"\n{missed} target(s) missed." if missed else "\nAll targets met.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
