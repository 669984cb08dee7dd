"""The request path through the whole middleware stack, measured on `/healthz`."""

from django.test import Client

from bench.harness import Figure, latency_figures, time_each


def bench_healthz(requests: int = 2000) -> list[Figure]:
    client = Client()

    def get() -> None:
        response = client.get("/healthz")
        assert response.status_code == 200, response.content

    return latency_figures(f"GET /healthz ({requests} requests)", time_each(get, repeat=requests))
