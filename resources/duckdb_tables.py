"""DuckDB tables for Polars frames: dagster-duckdb-polars, except that an unpartitioned asset's table is
replaced whole on each materialisation, in one transaction.

Users query tables such as `cuad_rejects` by name; an empty reject list must read as zero rows, not
as a missing table. Replacing (rather than deleting rows and inserting) also lets a table's columns
change between versions of the project without a manual migration.

Dagster's DB IO manager deletes a table's rows and then writes the new ones, each committed on its own: a
write that fails (a full disk) left the table empty. Here the delete and the write share one transaction,
so a failed write leaves the previous version whole.

Both writers here (the IO manager and the `duckdb` resource that assets and checks open) go through the
project's writer lock (`selfinstruct.core.duckdb_lock`) instead of dagster-duckdb's ten fixed retries, which
gave up while a loop of read-only queries held the file: readers wait for a waiting writer, so a reader never
fails a run.
"""

from collections.abc import Sequence
from contextlib import contextmanager

import polars as pl
from dagster import InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_polars import DuckDBPolarsIOManager
from dagster_duckdb_polars.duckdb_polars_type_handler import DuckDBPolarsTypeHandler
from pydantic import Field

from selfinstruct.core.duckdb_lock import WRITER_PATIENCE_S, transaction, writer_connection


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


class _TransactionalClient(DuckDbClient):
    @staticmethod
    @contextmanager
    def connect(context: OutputContext | InputContext, _table_slice: TableSlice):
        with transaction(context.resource_config["database"], context.resource_config["connection_config"]) as conn:
            yield conn


class DuckDBTablesIOManager(DuckDBPolarsIOManager):
    """Stores each asset's Polars frame in the DuckDB table named after the asset."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [_TableAlwaysTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=_TransactionalClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )


class DuckDBWriter(DuckDBResource):
    """dagster-duckdb's resource whose `get_connection()` waits as the project's writers do (see the module
    docstring): readers let it in, other writers are waited out for `patience_s`."""

    patience_s: float = Field(default=WRITER_PATIENCE_S, gt=0, description="seconds to wait for the file's lock")

    @contextmanager
    def get_connection(self):
        with writer_connection(self.database, self.connection_config, self.patience_s) as conn:
            yield conn
