"""Bedrock Titan v2 embeddings through a stubbed bedrock-runtime client."""

import io
import json

import boto3
import numpy as np
from botocore.response import StreamingBody
from botocore.stub import Stubber

from resources.embedders import TitanEmbedder


def test_titan_requests_and_normalises(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    emb = TitanEmbedder(dim=4, client=client)
    with Stubber(client) as stub:
        for vec in ([3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]):
            body = json.dumps({"embedding": vec}).encode()
            stub.add_response(
                "invoke_model",
                {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json"},
                {
                    "modelId": "amazon.titan-embed-text-v2:0",
                    "contentType": "application/json",
                    "accept": "application/json",
                    "body": json.dumps({"inputText": "a", "dimensions": 4, "normalize": True})
                    if vec[0]
                    else json.dumps({"inputText": "b", "dimensions": 4, "normalize": True}),
                },
            )
        out = emb.embed(["a", "b"])
    assert out.shape == (2, 4) and out.dtype == np.float32
    assert np.allclose(out[0], [0.6, 0.8, 0, 0]) and np.allclose(out[1], [0, 0, 1, 0])
