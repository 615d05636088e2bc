"""DuckDB tables for Polars frames: dagster-duckdb-polars, except that an unpartitioned asset's table is
replaced whole on each materialisation.

Users query tables such as `cuad_rejects` by name; an empty reject list must read as zero rows, not
as a missing table. Replacing (rather than deleting rows and inserting) also lets a table's columns
change between versions of the project without a manual migration.
"""

from collections.abc import Sequence

import polars as pl
from dagster import OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb_polars import DuckDBPolarsIOManager
from dagster_duckdb_polars.duckdb_polars_type_handler import DuckDBPolarsTypeHandler


class _TableAlwaysTypeHandler(DuckDBPolarsTypeHandler):
    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        if table_slice.partition_dimensions:
            return super().handle_output(context, table_slice, obj, connection)
        frame_arrow = obj.to_arrow()  # noqa: F841  (read by name in the SQL below)
        connection.execute(f"create schema if not exists {table_slice.schema}")
        connection.execute(
            f"create or replace table {table_slice.schema}.{table_slice.table} as select * from frame_arrow"
        )
        context.add_output_metadata({"row_count": obj.height})


class DuckDBTablesIOManager(DuckDBPolarsIOManager):
    """Stores each asset's Polars frame in the DuckDB table named after the asset."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [_TableAlwaysTypeHandler()]
