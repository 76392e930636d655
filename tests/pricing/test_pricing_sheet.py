"""`callmeter prices check` / `load`: every error with its line and column; load replaces."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pricing_helpers import SHEET, add_call, write
from typer.testing import CliRunner

from callmeter.cli import app
from ledger.connect import open_ledger
from pricing import SheetInvalid, latest_sheet, load_prices, read_sheet

HEADER = "model,effective_from,input,cached_input,output,request\n"
runner = CliRunner()


def messages(tmp_path, body: str, header: str = HEADER) -> list[str]:
    return [f"{p.line}:{p.column}:{p.message}"
            for p in read_sheet(write(tmp_path, header + body)).errors]


def test_the_shipped_sheet_is_valid_and_names_every_documented_model():
    sheet = read_sheet("data/prices.csv")
    assert sheet.errors == [] and sheet.warnings == []
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "o3", "o4-mini",
                  "claude-3-5-sonnet", "claude-3-opus", "claude-3-7-sonnet", "gemini-2.5-pro",
                  "gemini-2.5-flash", "gemini-2.5-flash-lite", "deepseek-chat",
                  "deepseek-reasoner", "qwen-plus", "qwen-max", "qwen-turbo", "qwen3-235b-a22b"):
        assert model in sheet.models and f"{model}-c" in sheet.models, model
    for model in ("dall-e-3", "text-embedding-3-small", "text-embedding-3-large",
                  "jina-reranker-v2-base-multilingual", "tts-1", "whisper-1"):
        assert model in sheet.models, model
    sources = {(line.split(",")[0], line.split(",")[1])
               for line in open("data/prices.sources.csv").read().splitlines()[1:]}
    assert {(r.model, r.effective_from.isoformat()) for r in sheet.rows} <= sources


def test_unknown_column(tmp_path):
    assert messages(tmp_path, "a,2025-01-01,1,,2,\n",
                    header="model,effective_from,input,cached_input,output,reqest\n") == [
        "1:reqest:unknown column 'reqest'; known columns: model, effective_from, input, "
        "cached_input, output, request, image, audio_minute, characters, cache_write, "
        "cache_write_long, above_input_tokens, currency"]


def test_negative_and_non_numeric_prices(tmp_path):
    assert messages(tmp_path, "a,2025-01-01,-1,,2,\nb,2025-01-01,1,,two,\n") == [
        "2:input:negative price -1", "3:output:'two' is not a number"]


def test_duplicate_model_and_date(tmp_path):
    assert messages(tmp_path, "a,2025-01-01,1,,2,\nb,2025-01-01,1,,2,\na,2025-01-01,3,,4,\n"
                    ) == ["4:effective_from:duplicate a from 2025-01-01 (first on line 2)"]


def test_per_request_row_without_request(tmp_path):
    assert messages(tmp_path, "a-c,2025-01-01,,,,\n") == [
        "2:request:a-c is a -c (per-request) model: it needs a request price"]


def test_per_token_row_with_a_request_price(tmp_path):
    assert messages(tmp_path, "a,2025-01-01,1,,2,0.01\n") == [
        "2:request:a is billed per token: a request price belongs on a a-c row"]


def test_token_prices_on_a_per_request_row(tmp_path):
    assert messages(tmp_path, "a-c,2025-01-01,1,,,0.01\n") == [
        "2:input:a-c is billed per request: input belong on the row for a"]


def test_bad_dates_and_empty_rows(tmp_path):
    assert messages(tmp_path, "a,01/02/2025,1,,2,\n\nb,2025-02-30,1,,2,\nc,2025-01-01,,,,\n") == [
        "2:effective_from:'01/02/2025' is not a date (YYYY-MM-DD, UTC)",
        "4:effective_from:'2025-02-30' is not a valid date",
        "5:None:c has no price: give at least one of input, cached_input, output, image, "
        "audio_minute, characters"]


def test_tier_row_needs_a_base_row(tmp_path):
    header = "model,effective_from,input,output,above_input_tokens\n"
    assert messages(tmp_path, "a,2025-01-01,2,4,1000\n", header=header) == [
        "2:above_input_tokens:tier row without a base row for a from 2025-01-01 "
        "(above_input_tokens blank)"]


def test_prices_are_decimal_from_text(tmp_path):
    sheet = read_sheet(write(tmp_path, HEADER + "a,2025-01-01,0.1,,0.000000001,\n"))
    assert sheet.rows[0].input == D("0.1") and sheet.rows[0].output == D("0.000000001")


def test_check_prints_line_column_errors_and_exits_non_zero(tmp_path):
    path = write(tmp_path, HEADER + "a,2025-01-01,-1,,2,\na-c,2025-01-01,,,,\n")
    result = runner.invoke(app, ["prices", "check", str(path), "--db",
                                 str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert f"{path}:2: column input: error: negative price -1" in result.output
    assert f"{path}:3: column request: error: a-c is a -c (per-request) model" in result.output


def test_check_lists_ledger_models_without_price_with_call_counts(tmp_path):
    db = str(tmp_path / "ledger.duckdb")
    conn = open_ledger(db)
    add_call(conn, "1", "tok", requests=40)
    add_call(conn, "2", "mystery-model")
    add_call(conn, "3", "mystery-model", requests=2)
    add_call(conn, "4", "tok", "2024-06-01 00:00:00+00")  # before tok's first price
    conn.close()
    result = runner.invoke(app, ["prices", "check", str(write(tmp_path, SHEET)), "--db", db])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if "calls" in line]
    assert [(w[0], w[1]) for w in lines] == [("mystery-model", "3"), ("tok", "1")]


def test_load_replaces_the_table_in_one_go_and_records_the_sheet(tmp_path):
    db = str(tmp_path / "ledger.duckdb")
    first = write(tmp_path, SHEET, "first.csv")
    second = write(tmp_path, HEADER + "tok,2025-01-01,4,,4,\n", "second.csv")
    result = runner.invoke(app, ["prices", "load", str(first), "--db", db])
    assert result.exit_code == 0, result.output
    assert "loaded 9 prices for 7 models" in result.output
    result = runner.invoke(app, ["prices", "load", str(second), "--db", db])
    assert result.exit_code == 0, result.output
    conn = open_ledger(db)
    assert conn.execute("SELECT model, input FROM prices").fetchall() == [("tok", D("4"))]
    sheets = conn.execute("SELECT sheet, rows FROM price_sheets ORDER BY loaded_at").fetchall()
    assert sheets == [(str(first.resolve()), 9), (str(second.resolve()), 1)]
    import hashlib
    assert latest_sheet(conn).sha256 == hashlib.sha256(second.read_bytes()).hexdigest()
    conn.close()


def test_an_invalid_sheet_changes_nothing(tmp_path):
    db = str(tmp_path / "ledger.duckdb")
    conn = open_ledger(db)
    load_prices(conn, write(tmp_path, SHEET))
    bad = write(tmp_path, HEADER + "tok,2025-01-01,-4,,4,\n", "bad.csv")
    with pytest.raises(SheetInvalid):
        load_prices(conn, bad)
    assert conn.execute("SELECT count(*) FROM prices").fetchone()[0] == 9
    conn.close()
    result = runner.invoke(app, ["prices", "load", str(bad), "--db", db])
    assert result.exit_code == 1
    assert "negative price -4" in result.output


def test_at_most_two_tiers_per_model_and_day(tmp_path):
    header = "model,effective_from,input,output,above_input_tokens\n"
    body = "a,2025-01-01,1,2,\na,2025-01-01,2,4,100\na,2025-01-01,3,6,200\na,2025-01-01,4,8,300\n"
    assert messages(tmp_path, body, header=header) == [
        "5:above_input_tokens:more than 2 tiers for a from 2025-01-01"]
