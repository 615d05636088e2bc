"""Run a named run-config profile over the project's assets, resumably: `make benchmark`.

    python -m selfinstruct_assets.cli.profile benchmarks/benchmark.yaml          # run what is missing
    python -m selfinstruct_assets.cli.profile benchmarks/benchmark.yaml --plan   # only say what would run

An asset is fresh when its latest materialisation ran with the profile's config for it and is newer than the
latest materialisation of every asset it reads; anything else, and everything downstream of it, is run again,
one op at a time in dependency order (so an interrupted run keeps what finished), with elapsed time and an ETA.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pydantic
import yaml

FORM = "ops: {ASSET: {config: {FIELD: VALUE}}}, as in benchmarks/benchmark.yaml"


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, what is wrong and the fix."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        siblings = [p.name for p in path.parent.glob("*.y*ml")] if path.parent.is_dir() else []
        near = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.8)
        hint = f"did you mean {path.parent / near[0]}? " if near else ""
        raise ProfileError(
            f"profile {path} does not exist; {hint}give a YAML profile such as benchmarks/benchmark.yaml"
        ) from None
    except IsADirectoryError:
        raise ProfileError(f"profile {path} is a folder; give a YAML file, e.g. benchmarks/benchmark.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path} cannot be read ({exc}); check that it is a readable UTF-8 file") from None


def load_profile(path: str | Path) -> dict:
    path = Path(path)
    try:
        profile = yaml.safe_load(_read(path)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"profile {path} is not valid YAML{where} ({problem}); the form is {FORM}") from None
    if not isinstance(profile, dict):
        raise ProfileError(
            f"{path}: a profile is a mapping with one 'ops' section ({FORM}), got a YAML {type(profile).__name__}"
        )
    if set(profile) - {"ops"}:
        raise ProfileError(f"{path}: a profile has only an 'ops' section, got {sorted(map(str, profile))}")
    ops = profile.get("ops") or {}
    if not isinstance(ops, dict):
        raise ProfileError(f"{path}: 'ops' must map asset ops to their config ({FORM}), got {ops!r}"[:300])
    for op, entry in ops.items():
        if not isinstance(entry or {}, dict) or not isinstance((entry or {}).get("config") or {}, dict):
            raise ProfileError(f"{path}: ops.{op} must be {{config: {{FIELD: VALUE}}}}, got {entry!r}"[:300])
    return profile


def _pydantic_brief(exc: pydantic.ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()]
    return f"{exc.title}: " + "; ".join(parts)


def config_class(asset: dg.AssetsDefinition) -> type | None:
    fn = asset.op.compute_fn
    param = inspect.signature(getattr(fn, "decorated_fn", fn)).parameters.get("config")
    return param.annotation if param is not None else None


def validate(profile: dict, assets: Sequence) -> None:
    """Every op the profile configures exists and its config builds its `dg.Config` (types and bounds)."""
    by_op = {a.op.name: a for a in assets if isinstance(a, dg.AssetsDefinition)}
    for op, entry in (profile.get("ops") or {}).items():
        if op not in by_op:
            raise ValueError(f"profile configures {op!r}, which is no asset op; known: {', '.join(sorted(by_op))}")
        cls = config_class(by_op[op])
        if cls is None:
            raise ValueError(f"{op} takes no config, but the profile gives it {entry}")
        config = (entry or {}).get("config", {})
        if unknown := set(config) - set(cls.model_fields):
            raise ValueError(
                f"{op}: {cls.__name__} has no field {', '.join(sorted(unknown))}; fields: {', '.join(cls.model_fields)}"
            )
        cls(**config)  # pydantic: a wrong type or bound raises here


def ordered(assets: Sequence) -> list[dg.AssetsDefinition]:
    """Asset ops in dependency order (ties: name), so each runs after what it reads."""
    defs = {a.op.name: a for a in assets if isinstance(a, dg.AssetsDefinition)}
    producer = {k: op for op, a in defs.items() for k in a.keys}
    needs = {op: {producer[k] for k in a.dependency_keys if k in producer} - {op} for op, a in defs.items()}
    out: list[str] = []
    while len(out) < len(defs):
        ready = sorted(op for op in defs if op not in out and needs[op] <= set(out))
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(set(defs) - set(out))}")
        out.append(ready[0])
    return [defs[op] for op in out]


def stale_ops(instance: dg.DagsterInstance, assets: Sequence, profile: dict) -> list[str]:
    ops, last, stale = profile.get("ops") or {}, {}, []
    for a in ordered(assets):
        events = [instance.get_latest_materialization_event(k) for k in a.keys]
        when = min((e.timestamp for e in events if e), default=None) if all(events) else None
        ran = instance.get_run_by_id(events[0].run_id) if when is not None else None
        same = ran is not None and (ran.run_config.get("ops") or {}).get(a.op.name, {}) == ops.get(a.op.name, {})
        newer = all(last.get(k, 0) <= (when or 0) for k in a.dependency_keys)
        upstream_stale = any(k in a.dependency_keys for s in stale for k in _keys(assets, s))
        if when is None or not same or not newer or upstream_stale:
            stale.append(a.op.name)
        for k, e in zip(a.keys, events):
            last[k] = e.timestamp if e else 0
    return stale


def _keys(assets: Sequence, op: str) -> set:
    return next(set(a.keys) for a in assets if isinstance(a, dg.AssetsDefinition) and a.op.name == op)


def run(profile: dict, assets: Sequence, resources: dict, instance: dg.DagsterInstance, checks=(), log=print) -> bool:
    todo = stale_ops(instance, assets, profile)
    log(f"profile: {len(todo)} asset ops to run: {', '.join(todo) or 'none (everything is fresh)'}")
    t0 = time.perf_counter()
    for i, op in enumerate(todo, 1):
        config = {"ops": {op: profile["ops"][op]}} if op in (profile.get("ops") or {}) else {}
        result = dg.materialize(
            [*assets, *checks],
            resources=resources,
            instance=instance,
            run_config=config,
            selection=dg.AssetSelection.assets(*_keys(assets, op)),
            raise_on_error=False,
        )
        spent = time.perf_counter() - t0
        log(
            f"profile: [{i}/{len(todo)}] {op} {'done' if result.success else 'FAILED'} (run {result.run_id[:8]}), "
            f"{spent:.0f} s so far, ETA {spent / i * (len(todo) - i):.0f} s"
        )
        if not result.success:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--plan", action="store_true", help="print the stale asset ops and stop")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, defs

        validate(profile, ASSETS)
    except pydantic.ValidationError as exc:  # a wrong type or bound in an op's config
        print(f"selfinstruct: {args.profile}: {_pydantic_brief(exc)}; fix that value in the profile", file=sys.stderr)
        return 2
    except ProfileError as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # validate's: an unknown op or field, named with the known ones
        print(f"selfinstruct: {args.profile}: {exc}", file=sys.stderr)
        return 2
    dagster_home = os.environ.get("DAGSTER_HOME", "")
    if not dagster_home or not Path(dagster_home).is_dir():
        problem = "is not set" if not dagster_home else f"={dagster_home} is not a folder"
        print(
            f"selfinstruct: DAGSTER_HOME {problem}: a profile keeps its runs, and so knows what is fresh, in a Dagster "
            "instance; point it at a folder (export DAGSTER_HOME=$SELFINSTRUCT_HOME/dagster, as make benchmark does) "
            "and run `selfinstruct instance` once, which creates it",
            file=sys.stderr,
        )
        return 2
    from selfinstruct.core.services import ServiceUnavailable
    from selfinstruct.core.settings import SettingsError
    from selfinstruct_assets.instance import check_instance

    try:  # before any work: the instance's PostgreSQL, a Celery broker, a bad SELFINSTRUCT_* value
        check_instance()
        resources = defs().resources
    except (ServiceUnavailable, SettingsError) as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    assets = [a for a in ASSETS if isinstance(a, dg.AssetsDefinition) and not a.partitions_def]
    with dg.DagsterInstance.get() as instance:
        if args.plan:
            print("\n".join(stale_ops(instance, assets, profile)))
            return 0
        return 0 if run(profile, assets, resources, instance, ALL_CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
