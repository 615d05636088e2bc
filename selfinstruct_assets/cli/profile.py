"""Run a named run-config profile over the project's assets, resumably: `make benchmark`.

    python -m selfinstruct_assets.cli.profile benchmarks/benchmark.yaml          # run what is missing
    python -m selfinstruct_assets.cli.profile benchmarks/benchmark.yaml --plan   # only say what would run

An asset is fresh when its latest materialisation ran with the profile's config for it and is newer than the
latest materialisation of every asset it reads; anything else, and everything downstream of it, is run again,
one op at a time in dependency order (so an interrupted run keeps what finished), with elapsed time and an ETA.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import yaml


def load_profile(path: str | Path) -> dict:
    profile = yaml.safe_load(Path(path).read_text()) or {}
    if set(profile) - {"ops"}:
        raise ValueError(f"{path}: a profile has only an 'ops' section, got {sorted(profile)}")
    return profile


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
    from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, defs

    profile, resources = load_profile(args.profile), defs().resources
    validate(profile, ASSETS)
    assets = [a for a in ASSETS if isinstance(a, dg.AssetsDefinition) and not a.partitions_def]
    with dg.DagsterInstance.get() as instance:
        if args.plan:
            print("\n".join(stale_ops(instance, assets, profile)))
            return 0
        return 0 if run(profile, assets, resources, instance, ALL_CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
