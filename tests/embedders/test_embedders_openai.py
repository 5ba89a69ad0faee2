"""OpenAIEmbedder against a local OpenAI-compatible server (no network, no real key)."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from learning_machines.embedders import HashEmbedder, OpenAIEmbedder
from learning_machines.exceptions import ConfigurationError, ModelError, ValidationError

DIMS = 12
_reference = HashEmbedder(DIMS)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], **body}
        )
        if self.path != "/v1/embeddings":
            return self._reply(404, {"error": {"message": "no route", "type": "not_found"}})
        if self.headers["Authorization"] != "Bearer test":
            return self._reply(401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
        if body["model"] == "missing":
            return self._reply(404, {"error": {"message": "model not found", "type": "not_found"}})
        texts = body["input"]
        # Deterministic, deliberately not unit-length, and returned out of order.
        vectors = 3.0 * _reference.embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": vectors[i].tolist()}
            for i in reversed(range(len(texts)))
        ]
        if body["model"] == "short-by-one":
            data = data[1:]
        return self._reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def make(server, model="local-model", **options):
    base_url = f"http://127.0.0.1:{server.server_port}/v1"
    return OpenAIEmbedder(model, base_url=base_url, api_key="test", max_retries=0, **options)


def test_vectors_are_normalised_and_in_input_order(server):
    texts = ["green tea", "black tea", "revenue report"]
    vectors = make(server).embed(texts)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, _reference.embed(texts), atol=1e-6)
    request = server.requests[0]
    assert request["input"] == texts
    assert request["model"] == "local-model"
    assert request["encoding_format"] == "float"
    assert "dimensions" not in request


async def test_aembed_matches_embed_and_batches(server):
    embedder = make(server, batch_size=2)
    texts = [f"note {i}" for i in range(5)]
    vectors = await embedder.aembed(texts)
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-6)
    assert sorted(len(r["input"]) for r in server.requests[:3]) == [1, 2, 2]


def test_dimensions_learned_from_the_first_response(server):
    embedder = make(server)
    assert embedder.dimensions == DIMS
    assert embedder.embed([]).shape == (0, DIMS)


async def test_aembed_of_nothing_has_the_right_width(server):
    assert (await make(server).aembed([])).shape == (0, DIMS)


def test_requested_dimensions_are_sent_and_named(server):
    embedder = make(server, dimensions=DIMS)
    embedder.embed(["x"])
    assert server.requests[0]["dimensions"] == DIMS
    assert embedder.name == f"openai:local-model/{DIMS}"
    assert make(server).name == "openai:local-model"


def test_known_model_sizes_need_no_request():
    embedder = OpenAIEmbedder(api_key="test")
    assert embedder.name == "openai:text-embedding-3-small"
    assert embedder.dimensions == 1536
    assert OpenAIEmbedder("text-embedding-3-large", api_key="test", dimensions=3072).name == (
        "openai:text-embedding-3-large"
    )


def test_wrong_vector_size_is_a_model_error(server):
    with pytest.raises(ModelError, match="expected 5"):
        make(server, dimensions=5).embed(["x"])


def test_empty_strings_are_sent_as_a_space(server):
    vectors = make(server).embed(["", "word"])
    assert server.requests[0]["input"] == [" ", "word"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_missing_model_says_how_to_fix(server):
    with pytest.raises(ModelError, match="check the model name"):
        make(server, model="missing").embed(["x"])


async def test_async_errors_are_model_errors_too(server):
    with pytest.raises(ModelError, match="check the model name"):
        await make(server, model="missing").aembed(["x"])


def test_refused_key_says_how_to_fix(server):
    embedder = OpenAIEmbedder(
        "m", base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="wrong", max_retries=0
    )
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        embedder.embed(["x"])


def test_short_response_is_a_model_error(server):
    with pytest.raises(ModelError, match="returned 1 vectors for 2 texts"):
        make(server, model="short-by-one").embed(["a", "b"])


def test_unreachable_server_is_a_model_error(server):
    port = server.server_port
    server.shutdown()
    server.server_close()
    embedder = OpenAIEmbedder(
        "m", base_url=f"http://127.0.0.1:{port}/v1", api_key="test", max_retries=0, timeout=5
    )
    with pytest.raises(ModelError, match="could not connect"):
        embedder.embed(["x"])


def test_no_key_and_no_base_url_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbedder()


def test_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    embedder = OpenAIEmbedder("m", base_url=f"http://127.0.0.1:{server.server_port}/v1")
    with pytest.raises(ModelError):  # this server wants "test"; the placeholder is sent
        embedder.embed(["x"])
    assert server.requests[0]["auth"] == "Bearer unused"


def test_missing_openai_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigurationError, match=r"learning-machines\[openai\]"):
        OpenAIEmbedder(api_key="test")


def test_bare_string_is_refused():
    with pytest.raises(ValidationError):
        OpenAIEmbedder(api_key="test").embed("hello")
