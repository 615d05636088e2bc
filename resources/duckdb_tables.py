"""DuckDB tables for Polars frames: dagster-duckdb-polars, except that an empty frame still creates its table.

Users query tables such as `cuad_rejects` by name; an empty reject list must read as zero rows, not
as a missing table.
"""

from collections.abc import Sequence

import polars as pl
from dagster import OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb_polars import DuckDBPolarsIOManager
from dagster_duckdb_polars.duckdb_polars_type_handler import DuckDBPolarsTypeHandler


class _TableAlwaysTypeHandler(DuckDBPolarsTypeHandler):
    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        if not obj.is_empty():
            return super().handle_output(context, table_slice, obj, connection)
        empty_arrow = obj.to_arrow()  # noqa: F841  (read by name in the SQL below)
        connection.execute(f"create schema if not exists {table_slice.schema}")
        connection.execute(f"create table if not exists {table_slice.schema}.{table_slice.table} "
                           "as select * from empty_arrow")
        context.add_output_metadata({"row_count": 0})


class DuckDBTablesIOManager(DuckDBPolarsIOManager):
    """Stores each asset's Polars frame in the DuckDB table named after the asset."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [_TableAlwaysTypeHandler()]
