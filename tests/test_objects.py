"""Where a worker keeps the steps' results: beside the outputs in S3, or on its own disk."""

from __future__ import annotations

import pytest

from flows.analyze import _result_storage
from tasks.caching import results_folder
from tests.conftest import S3_BUCKET


@pytest.mark.parametrize("output_location", [None, "/srv/poser/analyses/a1/outputs"])
def test_results_stay_in_prefects_local_storage_when_the_outputs_are_local(output_location):
    assert _result_storage(output_location) is None


@pytest.mark.parametrize(
    ("analysis_id", "folder"),
    [("a1", "analyses/a1/task-results"), (None, "runs/0f6b0e36-90b5-4d4e-9c1c-1a2b3c4d5e6f")],
)
def test_a_runs_results_share_its_analysis_folder_or_one_of_their_own(analysis_id, folder):
    assert results_folder("0f6b0e36-90b5-4d4e-9c1c-1a2b3c4d5e6f", analysis_id) == folder


def test_results_go_to_a_saved_block_on_the_outputs_bucket_and_endpoint(prefect_server, monkeypatch):
    monkeypatch.setenv("POSER_S3_ENDPOINT_URL", "http://objects.internal:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-2")
    storage = _result_storage("s3://poser.data/analyses/a1/outputs")
    assert storage._block_document_name == "poser-results-poser-data"
    assert (storage.bucket_name, storage.bucket_folder) == ("poser.data", "")
    assert storage.credentials.aws_client_parameters.endpoint_url == "http://objects.internal:9000"
    assert storage.credentials.region_name == "eu-central-2"
    assert storage.credentials.aws_secret_access_key is None  # read from the worker's environment
    again = _result_storage("s3://poser.data/analyses/a2/outputs")
    assert again._block_document_id == storage._block_document_id

    monkeypatch.setenv("POSER_S3_ENDPOINT_URL", "http://objects.example:9000")
    moved = _result_storage("s3://poser.data/analyses/a3/outputs")
    assert moved._block_document_name == "poser-results-poser-data"
    assert moved.credentials.aws_client_parameters.endpoint_url == "http://objects.example:9000"


def test_a_result_written_by_one_host_is_read_by_another(prefect_server, s3_server, monkeypatch):
    monkeypatch.setenv("POSER_S3_ENDPOINT_URL", s3_server)
    location = f"s3://{S3_BUCKET}/analyses/a1/outputs"
    _result_storage(location).write_path("analyses/a1/task-results/0123abcd", b"tracked skier")
    assert _result_storage(location).read_path("analyses/a1/task-results/0123abcd") == b"tracked skier"
