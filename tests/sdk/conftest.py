"""Starts the mock provider and a regional gateway for the official `openai` SDK tests.

Binaries come from MERIDIAN_BIN_DIR (set by scripts/test). Processes report readiness by
printing their address; they are killed at the end of the session.
"""
import hashlib
import os
import secrets
import subprocess
import tempfile

import pytest

BIN = os.environ.get("MERIDIAN_BIN_DIR", "")


def spawn(args, env=None):
    log = tempfile.NamedTemporaryFile(prefix="meridian-sdk-", suffix=".log", delete=False)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    for line in p.stdout:
        if "listening on " in line:
            return p, line.split("listening on ", 1)[1].strip()
    p.kill()
    raise RuntimeError(f"{args[0]} exited before it was ready; see {log.name}")


@pytest.fixture(scope="session")
def gateway():
    mock, mock_url = spawn([os.path.join(BIN, "meridian-mock"), "--listen", "127.0.0.1:0"])
    key = "sk-sdk-" + secrets.token_hex(16)
    digest = hashlib.sha256(key.encode()).hexdigest()
    cfg = f"""
server: {{ listen: "127.0.0.1:0", region: eu }}
routes:
  default:
    timeouts: {{ connect_ms: 500, first_byte_ms: 2000, first_token_ms: 2000, idle_ms: 500, total_ms: 10000 }}
    retry: {{ max_attempts_per_deployment: 1, backoff_base_ms: 10 }}
providers:
  - {{ name: openai, kind: openai, base_url: "{mock_url}/v1", api_key_env: SDK_PROVIDER_KEY }}
  - {{ name: anthropic, kind: anthropic, base_url: "{mock_url}", api_key_env: SDK_PROVIDER_KEY }}
  - {{ name: gemini, kind: gemini, base_url: "{mock_url}/v1beta", api_key_env: SDK_PROVIDER_KEY }}
deployments:
  - {{ name: oa, provider: openai, model: gpt-4o }}
  - {{ name: an, provider: anthropic, model: claude-haiku-4-5 }}
  - {{ name: ge, provider: gemini, model: gemini-2.0-flash }}
  - {{ name: broken, provider: openai, model: "gpt-4o@cut=3" }}
  - {{ name: overloaded, provider: anthropic, model: "claude@status=529" }}
models:
  - {{ name: gpt-4o, deployments: [oa] }}
  - {{ name: claude, deployments: [an] }}
  - {{ name: gemini, deployments: [ge] }}
  - {{ name: broken, deployments: [broken] }}
  - {{ name: overloaded, deployments: [overloaded] }}
tenants:
  - {{ id: sdk, region: eu, api_keys: [{{ name: k, sha256: "{digest}" }}] }}
"""
    path = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    path.write(cfg)
    path.close()
    env = dict(os.environ, SDK_PROVIDER_KEY="mock")
    gw, gw_url = spawn([os.path.join(BIN, "meridian-regional"), "serve", "--config", path.name], env)
    yield {"base_url": gw_url + "/v1", "key": key}
    for p in (gw, mock):
        p.kill()
        p.wait()
