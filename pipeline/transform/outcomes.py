"""Build output rows: new executions and requests, response and cancel updates, errors."""

from __future__ import annotations

import polars as pl

SUMMARY_CHARS = 500

# SPEC §3: JSON-RPC error code → category.
ERROR_CATEGORIES: dict[int, str] = {
    -32700: "parse_error",
    -32600: "invalid_request",
    -32601: "method_not_found",
    -32602: "invalid_params",
    -32603: "internal_error",
    -32002: "resource_not_found",
    -32042: "url_elicitation_required",
    -32020: "header_mismatch",
    -32021: "missing_required_client_capability",
    -32022: "unsupported_protocol_version",
}


def error_category(code: pl.Expr, message: pl.Expr, is_error_result: pl.Expr) -> pl.Expr:
    """The error_category of SPEC §3 for a code, its message and the isError flag."""
    mapped = code.replace_strict(
        list(ERROR_CATEGORIES),
        list(ERROR_CATEGORIES.values()),
        default=None,
        return_dtype=pl.String,
    )
    return (
        pl.when(is_error_result)
        .then(pl.lit("tool_execution_error"))
        .when(code.is_null())
        .then(pl.lit("unknown_error"))
        .when((code == 0) & message.str.to_lowercase().str.contains("cancel"))
        .then(pl.lit("request_cancelled"))
        .when(mapped.is_not_null())
        .then(mapped)
        .when(code.is_between(-32099, -32000))
        .then(pl.lit("server_error"))
        .otherwise(pl.lit("unknown_error"))
    )


def result_type() -> pl.Expr:
    """result_type of a response row (SPEC §2)."""
    types = pl.col("content_types")
    return (
        pl.when(pl.col("has_error"))
        .then(pl.lit("error"))
        .when(pl.col("result_type_field") == "input_required")
        .then(pl.lit("input_required"))
        .when(pl.col("has_task") & types.list.len().fill_null(0).eq(0))
        .then(pl.lit("task"))
        .when(types.is_null() | (types.list.len() == 0))
        .then(pl.lit("empty"))
        .when(types.list.n_unique() == 1)
        .then(types.list.first())
        .otherwise(pl.lit("mixed"))
    )


def response_status() -> pl.Expr:
    """Status decided by a response: error, success, or pending for unfinished results."""
    return (
        pl.when(pl.col("has_error") | pl.col("is_error"))
        .then(pl.lit("error"))
        .when(pl.col("result_type").is_in(["input_required", "task"]))
        .then(pl.lit("pending"))
        .otherwise(pl.lit("success"))
    )


def response_fields(responses: pl.DataFrame) -> pl.DataFrame:
    """The per-response columns an execution takes from its response row."""
    return responses.with_columns(result_type=result_type()).with_columns(
        status=response_status(),
        result_summary=pl.when(pl.col("has_error"))
        .then(pl.col("error_message"))
        .otherwise(pl.col("first_text"))
        .str.slice(0, SUMMARY_CHARS),
    )


def client_info(name: pl.Expr) -> pl.Expr:
    """errors.client_info: the client's name as JSON, or NULL when unknown."""
    return pl.when(name.is_not_null()).then(pl.struct(name=name).struct.json_encode())
