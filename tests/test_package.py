"""What importing the package sets up for the libraries below it."""

import os
import subprocess
import sys


def _policy_seen_by_a_fresh_process(env: dict[str, str]) -> str:
    code = "import forecasting, lightgbm, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_lightgbm_openmp_threads_sleep_while_they_wait_unless_the_user_says_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_seen_by_a_fresh_process(env) == "PASSIVE"
    assert _policy_seen_by_a_fresh_process(env | {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
