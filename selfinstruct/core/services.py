"""Preflight checks of outside services: one sentence naming the variable, the address (no secrets) and the fix.

    check_postgres(os.environ["SELFINSTRUCT_PG_URL"])           # ServiceUnavailable, else None
    check_broker(url, "SELFINSTRUCT_CELERY_BROKER")             # Redis (PING) or RabbitMQ (AMQP handshake)
    check_http(base_url, "LMSpec.base_url", "OpenAI-compatible endpoint")
    check_s3(client, "bucket", "s3://bucket/prefix", "SELFINSTRUCT_ARTIFACTS", "the artifact store")  # HeadBucket
    check_bedrock(region, "SELFINSTRUCT_EMBEDDER=titan", ...)  # a region and credentials, no request sent

Dagster-free. A check runs when a command or a run starts (the instance CLI, the executor, the LM of a remote
backend, an S3 artifact store, the Titan embedder), so a service that is missing, refuses or does not answer stops
it at once with the fix, instead of a 200-line traceback deep inside a step. Each check waits at most `timeout_s`.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request

from selfinstruct.core.redact import redact_text, redact_uri

TIMEOUT_S = 5.0


class ServiceUnavailable(RuntimeError):
    """An outside service is missing, refuses or does not answer; the message names the variable and the fix."""


def _fail(variable: str, what: str, url: str, problem: str, fix: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{variable}: {what} at {redact_uri(url)} {problem}; {fix}")


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:  # a port that is not a number
        port = default_port
    return parts.hostname or "localhost", port


def check_tcp(url: str, variable: str, what: str, default_port: int, fix: str, timeout_s: float = TIMEOUT_S) -> None:
    """The host and port of `url` accept a TCP connection within `timeout_s`."""
    host, port = _address(url, default_port)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except socket.gaierror as exc:
        problem = f"cannot be found: host {host!r} is not known ({exc.strerror})"
    except ConnectionRefusedError:
        problem = f"refuses connections (nothing listens on {host}:{port})"
    except TimeoutError:
        problem = f"did not answer within {timeout_s:g} s (a firewall, or a wrong host or port?)"
    except OSError as exc:
        problem = f"cannot be reached ({exc.strerror or exc})"
    raise _fail(variable, what, url, problem, fix)


def _pg_dsn(url: str) -> str:
    # SQLAlchemy's driver suffix (postgresql+psycopg2://) means nothing to libpq.
    scheme, sep, rest = url.partition("://")
    return ("postgresql" if scheme.startswith("postgres") else scheme) + sep + rest


def check_postgres(url: str, variable: str = "SELFINSTRUCT_PG_URL", timeout_s: float = TIMEOUT_S) -> None:
    """PostgreSQL at `url` accepts its user, password and database."""
    import psycopg2

    what = "PostgreSQL"
    parts = urllib.parse.urlsplit(url)
    host, port = _address(url, 5432)
    user, database = parts.username or "(your login)", parts.path.lstrip("/") or "(the user's name)"
    check_tcp(url, variable, what, 5432, f"start PostgreSQL (make services) or correct the host and port in {variable}")
    try:
        psycopg2.connect(_pg_dsn(url), connect_timeout=max(1, int(timeout_s))).close()
        return
    except psycopg2.OperationalError as exc:
        text = " ".join(redact_text(str(exc)).split())
    if "does not exist" in text and "database" in text:
        problem = f"has no database {database!r}"
        fix = f"create it (createdb -h {host} -p {port} -U postgres {database}) or name an existing one in {variable}"
    elif "does not exist" in text and "role" in text:
        problem = f"has no role {user!r}"
        fix = f"create it (createuser -h {host} -p {port} -U postgres -P {user}) or correct the user in {variable}"
    elif "password authentication failed" in text or "no password supplied" in text:
        problem = f"refuses the password of {user!r}"
        fix = f"correct the password in {variable}"
    elif "no pg_hba.conf entry" in text:
        problem = f"does not let {user!r} connect from this host"
        fix = "add a pg_hba.conf entry for this host, user and database and reload PostgreSQL"
    else:
        problem = f"refused the connection ({text})"
        fix = f"check {variable} (postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB)"
    raise _fail(variable, what, url, problem, fix)


def check_broker(url: str, variable: str = "SELFINSTRUCT_CELERY_BROKER", timeout_s: float = TIMEOUT_S) -> None:
    """The Celery broker at `url` (redis:// or amqp://) accepts a connection and its credentials."""
    scheme = urllib.parse.urlsplit(url).scheme
    redis_like = scheme in ("redis", "rediss")
    what, port = ("Redis", 6379) if redis_like else ("RabbitMQ", 5672)
    start = "start Redis (make services)" if redis_like else "start RabbitMQ (make services)"
    check_tcp(url, variable, f"the Celery broker ({what})", port, f"{start} or correct the address in {variable}")
    try:
        if redis_like:
            import redis

            redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s).ping()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=timeout_s) as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:  # redis, kombu and amqp raise many kinds; the sentence names what they said
        reason = " ".join(redact_text(f"{type(exc).__name__}: {exc}").split())
        raise _fail(
            variable,
            f"the Celery broker ({what})",
            url,
            f"refused the connection ({reason})",
            f"check the user, password and virtual host or database number in {variable}",
        ) from None


def check_http(url: str, variable: str, what: str, path: str = "", timeout_s: float = TIMEOUT_S, fix: str = "") -> None:
    """An HTTP server answers at `url` (+ `path`) within `timeout_s`; any HTTP status counts as an answer."""
    fix = fix or f"start it or correct {variable}"
    check_tcp(url, variable, what, 443 if url.startswith("https") else 80, fix, timeout_s)
    try:
        urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # it answered: authentication and paths are the client's to report
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _fail(variable, what, url, f"does not answer HTTP ({redact_text(str(reason))})", fix) from None


def check_s3(client, bucket: str, location: str, variable: str, what: str = "S3", timeout_s: float = TIMEOUT_S) -> None:
    """The bucket of `location` exists and the credentials may use it: one HeadBucket with `client`. An endpoint of
    one's own (MinIO, LocalStack: AWS_ENDPOINT_URL_S3) must first answer HTTP within `timeout_s`, so a hung one is
    named at once instead of waited on for boto3's minutes of retries."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    endpoint = str(getattr(client.meta, "endpoint_url", "") or "")
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    where = f"{what} {location} (S3 endpoint {redact_uri(endpoint)})"
    elsewhere = f"or point {variable} at a local folder"
    if host and not host.endswith(".amazonaws.com"):
        fix = f"start it (a local S3 such as MinIO must be running) or correct AWS_ENDPOINT_URL_S3, {elsewhere}"
        check_http(endpoint, variable, f"the S3 endpoint of {what} {location}", timeout_s=timeout_s, fix=fix)
    try:
        client.head_bucket(Bucket=bucket)
        return
    except NoCredentialsError:
        problem = "cannot be used: no AWS credentials were found"
        fix = (
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance role with access "
            f"to bucket {bucket!r}, {elsewhere}"
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchBucket"):
            raise ServiceUnavailable(
                f"{variable}: bucket {bucket!r} of {where} does not exist; create it (aws s3 mb s3://{bucket}) "
                f"or point {variable} at another s3://BUCKET/PREFIX or a local folder"
            ) from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            problem = f"refuses these AWS credentials ({code})"
            fix = (
                "use credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) allowed "
                f"s3:ListBucket, s3:GetObject and s3:PutObject on bucket {bucket!r}, {elsewhere}"
            )
        else:
            problem = f"refused HeadBucket ({redact_text(str(exc))})"
            fix = f"check bucket {bucket!r}, AWS_REGION and the AWS credentials, {elsewhere}"
    except BotoCoreError as exc:  # no route, DNS, a timeout: the network, not the credentials
        problem = f"cannot be reached ({redact_text(str(exc))})"
        fix = f"check the network, AWS_ENDPOINT_URL_S3 and AWS_REGION, {elsewhere}"
    raise ServiceUnavailable(f"{variable}: {where} {problem}; {fix}")


def check_bedrock(region: str | None, variable: str, region_variable: str, region_example: str, fallback: str) -> str:
    """Bedrock needs a region and AWS credentials before any request (none is sent); the region it will use.
    `variable` names what chose Bedrock, `region_variable` and `region_example` where a region is set (besides
    AWS_REGION), `fallback` what to use instead."""
    import boto3

    session = boto3.Session(region_name=region or None)
    if not session.region_name:
        raise ServiceUnavailable(
            f"{region_variable}: Bedrock needs a region; set {region_example} or AWS_REGION, or {fallback}"
        )
    if session.get_credentials() is None:
        raise ServiceUnavailable(
            f"{variable}: Bedrock in {session.region_name}: no AWS credentials were found; set AWS_PROFILE, or "
            f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance role with bedrock:InvokeModel, or {fallback}"
        )
    return session.region_name
