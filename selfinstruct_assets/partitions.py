"""Partitions: contracts added after the CUAD load are one dynamic partition each, keyed by contract_id."""

import dagster as dg

ADDED_CONTRACTS = dg.DynamicPartitionsDefinition(name="added_contracts")
