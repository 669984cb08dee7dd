"""What the HTTP benchmarks serve with gunicorn: the product's URLs plus a bare baseline that
exists only here (never in the product's URLConf)."""
