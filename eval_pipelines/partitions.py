"""Dynamic partitions: one per accepted benchmark (and, later, evaluation) request."""

from dagster import DynamicPartitionsDefinition

benchmark_partitions = DynamicPartitionsDefinition(name="benchmark")
evaluation_partitions = DynamicPartitionsDefinition(name="evaluation")
