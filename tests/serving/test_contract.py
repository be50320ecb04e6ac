"""The API's contract: its OpenAPI document is complete (references resolve, the bearer key
and the error answers are declared), and no input makes a real server answer 5xx, tried by
schemathesis from the service's own document with a key of each role (bounded in time; a
longer run: ``benchmarks/bench_contract.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error, status_code_conformance

from illicitflows.access.keys import KeyStore
from illicitflows.serving.app import app
from illicitflows.tracking.registry import CHAMPION, log_and_register, promote, resolve_version
from illicitflows.tracking.setup import configure, use_experiment

ROLES = ("scorer", "auditor", "admin")
#: Fuzzing budget: examples per operation and generation mode, and seconds (make test's
#: defaults; benchmarks/bench_contract.py sets a longer run through these variables).
EXAMPLES = int(os.environ.get("ILLICITFLOWS_FUZZ_EXAMPLES", "25"))
SECONDS = float(os.environ.get("ILLICITFLOWS_FUZZ_SECONDS", "75"))
#: The line carrying the fuzzing's outcome (JSON) in the test's output.
OUTCOME = "contract-fuzz-outcome "


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(document: dict, ref: str) -> object:
    assert ref.startswith("#/"), ref
    node: object = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_openapi_document_is_complete() -> None:
    document = app.openapi()
    for ref in refs(document):
        resolve(document, ref)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API key from 'illicitflows keys create'."}
    paths = document["paths"]
    expected = {("post", "/transactions/score"): {401, 403, 413, 415, 422},
                ("post", "/trade/score"): {401, 403, 413, 415, 422},
                ("get", "/decisions/{decision_id}"): {401, 403, 404},
                ("get", "/decisions"): {401, 403, 422},
                ("get", "/models"): {401, 403}, ("post", "/admin/reload"): {401, 403},
                ("post", "/transactions/review"): {401, 403, 409, 413, 415, 422, 503}}
    for (method, path), statuses in expected.items():
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}], path
        assert statuses <= {int(s) for s in operation["responses"]}, path
        for status in statuses:
            assert operation["responses"][str(status)]["content"]["application/json"][
                "schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    parameters = {p["name"]: p for p in paths["/decisions"]["get"]["parameters"]}
    assert {"from", "to", "flagged", "model_version", "detector", "page",
            "page_size"} <= set(parameters)
    assert parameters["from"]["schema"]["format"] == "date-time"
    body = paths["/transactions/score"]["post"]["requestBody"]["content"]["application/json"]
    request = resolve(document, body["schema"]["$ref"])
    record = resolve(document, request["properties"]["transactions"]["items"]["$ref"])
    assert record["properties"]["amount_paid"]["maximum"] > 0
    assert record["additionalProperties"] is False
    review = paths["/transactions/review"]["post"]
    asked = resolve(document, review["requestBody"]["content"]["application/json"]["schema"][
        "$ref"])
    assert asked["required"] == ["from", "to"] and asked["additionalProperties"] is False
    assert asked["properties"]["top"]["maximum"] == 1000
    answered = resolve(document, review["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"])
    assert {"review_id", "accounts", "networks", "audit"} <= set(answered["required"])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tx_detector, trade_detector):
    """A real server with both detectors as champions and a key of each role."""
    root = tmp_path_factory.mktemp("contract")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {"ILLICITFLOWS_DATA_DIR": str(root), "ILLICITFLOWS_TRACKING_URI": uri,
           "BENTOML_HOME": str(root / "bentoml")}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    configure(uri)
    for detector in (tx_detector, trade_detector):
        use_experiment(detector.domain, uri)
        with mlflow.start_run():
            version = log_and_register(detector).version
        promote(detector.domain, "unused", force=True, reason="contract test")
        assert resolve_version(detector.domain, CHAMPION).version == version
    store = KeyStore()
    keys = {role: store.create(role)[1] for role in ROLES}
    store.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    import bentoml

    handle = bentoml.serve("illicitflows.serving.service:IllicitFlows", port=port,
                           host="127.0.0.1", working_dir=str(Path.cwd()))
    try:
        deadline = time.monotonic() + 300
        while not _answers(f"{base}/readyz"):
            assert time.monotonic() < deadline, "the server was not ready in 300 s"
            time.sleep(0.5)
        yield {"base": base, "keys": keys, "root": root}
    finally:
        handle.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.mark.e2e
def test_docs_and_document_are_served(served) -> None:
    docs = httpx.get(f"{served['base']}/docs", follow_redirects=True)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert httpx.get(f"{served['base']}/v1/openapi.json").json()["components"][
        "securitySchemes"]


@pytest.mark.e2e
def test_metrics_do_not_grow_with_made_up_paths(served) -> None:
    base = served["base"]
    with httpx.Client(base_url=base) as client:
        for n in range(30):
            client.get(f"/v1/decisions/made-up-{n}")
            client.get(f"/ui/decisions/made-up-{n}")
            client.get(f"/made-up-{n}/x")
        metrics = client.get("/metrics").text
    assert "made-up" not in metrics
    assert 'endpoint="/v1/decisions/{decision_id}"' in metrics
    assert 'endpoint="/ui/decisions/{decision_id}"' in metrics
    assert 'endpoint="unmatched"' in metrics


@pytest.mark.e2e
def test_the_review_page_is_served_at_ui(served) -> None:
    base, keys = served["base"], served["keys"]
    with httpx.Client(base_url=base) as client:
        page = client.get("/ui", follow_redirects=True)  # the sign-in page, no session yet
        assert page.status_code == 401 and 'id="key"' in page.text
        assert client.get("/v1/ui").status_code == 404  # one address
        signed = client.post("/ui/sign-in", data={"key": keys["auditor"]})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/queue"
        queue = client.get("/ui/queue")  # the session cookie, for the whole server
        assert queue.status_code == 200 and 'id="queue"' in queue.text
        report = "/v1/models/illicitflows-transactions/1/report"  # read with the cookie
        assert client.get(report).status_code in (200, 404)  # no report logged: 404
        assert httpx.get(f"{base}{report}").status_code == 401
        refused = httpx.post(f"{base}/ui/sign-in", data={"key": keys["scorer"]})
        assert refused.status_code == 403


class Fuzz:
    """Schemathesis over every operation of the served document, positive and negative data,
    each case sent with the key of a drawn role (or a generated one); counts the cases, their
    statuses and the failures of the checks (no 5xx, only declared statuses)."""

    def __init__(self, base: str, keys: dict[str, str], seconds: float) -> None:
        self.base, self.deadline = base, time.monotonic() + seconds
        self.headers = st.sampled_from([*ROLES, None]).map(
            lambda role: {} if role is None else {"Authorization": f"Bearer {keys[role]}"})
        self.cases = 0
        self.statuses: dict[int, int] = {}
        self.by_operation: dict[str, int] = {}
        self.failures: list[str] = []
        self.without_cases: list[str] = []

    def run(self, examples: int) -> dict[str, object]:
        schema = schemathesis.openapi.from_url(f"{self.base}/v1/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            inputs = (operation.get_request_payload_content_types()
                      or [p for p in operation.iter_parameters() if p.name != "Authorization"])
            for mode in schemathesis.GenerationMode:  # without inputs, only the key varies
                self.operation(operation, mode, examples if inputs else 4)
        return {"cases": self.cases, "statuses": self.statuses, "failures": self.failures,
                "by_operation": dict(sorted(self.by_operation.items())),
                "without_cases": self.without_cases}

    def operation(self, operation: schemathesis.APIOperation,
                  mode: schemathesis.GenerationMode, examples: int) -> None:
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), auth=self.headers)
        def run(case: schemathesis.Case, auth: dict[str, str]) -> None:
            if time.monotonic() > self.deadline:
                return
            self.cases += 1
            response = case.call(base_url=f"{self.base}/v1", headers=auth, timeout=60)
            status = response.status_code
            self.statuses[status] = self.statuses.get(status, 0) + 1
            label = f"{operation.label} -> {status}"
            self.by_operation[label] = self.by_operation.get(label, 0) + 1
            try:
                case.validate_response(response, checks=[not_a_server_error,
                                                          status_code_conformance])
            except Exception as failure:  # noqa: BLE001 - every check failure is counted
                self.failures.append(f"{operation.label} ({mode.value}): {str(failure)[:400]}")

        try:
            run()
        except Unsatisfiable:  # e.g. no negative data for inputs that take any text
            self.without_cases.append(f"{operation.label} ({mode.value})")


@pytest.mark.e2e
def test_no_input_gets_a_server_error(served) -> None:
    # in a process of its own: a library loaded earlier in the suite may set the CPU's
    # flush-to-zero mode, and hypothesis then refuses to draw the floats schemathesis asks for
    fuzz = subprocess.run([sys.executable, __file__, served["base"], json.dumps(served["keys"])],
                          capture_output=True, text=True, timeout=SECONDS + 600, check=False)
    assert fuzz.returncode == 0, fuzz.stderr[-3000:]
    outcome = json.loads(fuzz.stdout.strip().splitlines()[-1])
    outcome["statuses"] = {int(status): n for status, n in outcome["statuses"].items()}
    print(OUTCOME + json.dumps(outcome))
    assert outcome["cases"] >= 100
    assert not [s for s in outcome["statuses"] if s >= 500], outcome
    assert outcome["failures"] == [], outcome["failures"][:5]
    assert outcome["statuses"].get(200, 0) > 0  # the fuzz reached real answers


if __name__ == "__main__":  # the fuzz itself, run by the test above in a fresh process
    print(json.dumps(Fuzz(sys.argv[1], json.loads(sys.argv[2]), SECONDS).run(EXAMPLES)))
