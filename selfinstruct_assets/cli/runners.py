"""`selfinstruct benchmark PROFILE` and `selfinstruct instance`: the profile runner and the instance set-up as
subcommands (the same code as `python -m selfinstruct_assets.cli.profile` / `python -m selfinstruct_assets.instance`).

    selfinstruct instance                       # dagster.yaml under DAGSTER_HOME, pools; --postgres for PostgreSQL
    selfinstruct benchmark benchmarks/benchmark.yaml --plan   # the stale asset ops, without running them
"""

import argparse


def cmd_benchmark(args: argparse.Namespace) -> int:
    from selfinstruct_assets.cli.profile import main

    return main([args.profile, *(["--plan"] if args.plan else [])])


def cmd_instance(args: argparse.Namespace) -> int:
    from selfinstruct_assets.instance import main

    return main(["--postgres"] if args.postgres else [])


def add_runner_parsers(subparsers) -> None:
    b = subparsers.add_parser("benchmark", help="materialise what a profile (e.g. benchmarks/benchmark.yaml) needs")
    b.add_argument("profile", help="a YAML run profile: ops -> config per asset")
    b.add_argument("--plan", action="store_true", help="print the stale asset ops and stop")
    b.set_defaults(func=cmd_benchmark)
    i = subparsers.add_parser("instance", help="write the Dagster instance config and create the pools")
    i.add_argument("--postgres", action="store_true", help="runs and events in PostgreSQL ($SELFINSTRUCT_PG_URL)")
    i.set_defaults(func=cmd_instance)
