"""The product's settings, serving `bench.serve.urls` (the product's URLs and the baseline)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.serve.urls"
