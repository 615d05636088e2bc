"""Real services the deployment tests talk to on loopback; unreachable means a failed test with the fix, never a skip."""

import contextlib
import os
import socket
import uuid

import pytest

FIX = "run `make services` (installs and starts PostgreSQL, Redis and RabbitMQ when missing; needs root)"


def require_tcp(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(f"{name} is not reachable on {host}:{port} ({exc}): {FIX}", pytrace=False)


def require_redis(host: str = "127.0.0.1", port: int = 6379) -> None:
    require_tcp("Redis", host, port)
    import redis

    try:
        redis.Redis(host=host, port=port, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis on {host}:{port} does not answer PING ({exc}): {FIX}", pytrace=False)


# trust auth on loopback, as `make services` sets up; a server with a password: SELFINSTRUCT_TEST_PG_ADMIN
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_pg_database(admin_url: str = ""):
    """A new, empty database on the local server for one test (its URL), dropped afterwards."""
    import psycopg2

    admin_url = admin_url or os.environ.get("SELFINSTRUCT_TEST_PG_ADMIN") or PG_ADMIN

    require_tcp("PostgreSQL", "127.0.0.1", 5432)
    name = f"selfinstruct_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=5)
    except psycopg2.Error as exc:
        pytest.fail(
            f"PostgreSQL on 127.0.0.1:5432 refused the test's admin connection ({exc}): {FIX}, "
            "or set SELFINSTRUCT_TEST_PG_ADMIN",
            pytrace=False,
        )  # the URL may hold a password
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')  # leftover daemon connections too
        admin.close()
