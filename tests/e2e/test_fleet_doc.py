# SPDX-License-Identifier: MIT
"""docs/fleet.md's Prometheus alert rules, as written: `promtool check rules` accepts them,
and `promtool test rules` shows each alert firing when it should and not otherwise (an
expiry of 0 means no token or no known expiry, and must not alert), each alert naming the
profile (two on one host alert apart). Skipped without promtool (Debian's prometheus
package)."""

import os
import re
import shutil
import subprocess

import pytest

from sdenv import SOURCE_ROOT

pytestmark = pytest.mark.no_binaries

PROMTOOL = shutil.which("promtool")

CASES = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'regscale_token_expiry_timestamp_seconds{instance="days",profile="prod"}'
        values: '259200+0x120'
      - series: 'regscale_token_expiry_timestamp_seconds{instance="hours",profile="prod"}'
        values: '43200+0x120'
      - series: 'regscale_token_expiry_timestamp_seconds{instance="hours",profile="staging"}'
        values: '2592000+0x120'
      - series: 'regscale_token_expiry_timestamp_seconds{instance="unknown",profile="prod"}'
        values: '0+0x120'
      - series: 'regscale_token_expiry_timestamp_seconds{instance="far",profile="prod"}'
        values: '2592000+0x120'
      - series: 'regscale_token_state{instance="unknown",profile="prod",state="no_token"}'
        values: '1+0x120'
      - series: 'regscale_token_state{instance="unknown",profile="staging",state="no_token"}'
        values: '0+0x120'
      - series: 'regscale_token_state{instance="far",profile="prod",state="retrying"}'
        values: '1+0x120'
      - series: 'regscale_token_logins_total{instance="hours",profile="prod",result="rejected"}'
        values: '0 0 0 1+0x117'
      - series: 'regscale_token_logins_total{instance="hours",profile="staging",result="rejected"}'
        values: '0+0x120'
    alert_rule_test:
      - eval_time: 20m
        alertname: RegScaleTokenExpiresSoon
        exp_alerts:
          - exp_labels: {severity: warning, instance: days, profile: prod}
            exp_annotations:
              summary: RegScale token prod on days ends in 2d 23h 40m 0s
          - exp_labels: {severity: warning, instance: hours, profile: prod}
            exp_annotations:
              summary: RegScale token prod on hours ends in 11h 40m 0s
          - exp_labels: {severity: critical, instance: hours, profile: prod}
      - eval_time: 10m
        alertname: RegScaleTokenUnusable
        exp_alerts:
          - exp_labels: {severity: critical, instance: unknown, profile: prod, state: no_token}
      - eval_time: 20m
        alertname: RegScaleTokenLoginRetrying
        exp_alerts: []
      - eval_time: 40m
        alertname: RegScaleTokenLoginRetrying
        exp_alerts:
          - exp_labels: {severity: warning, instance: far, profile: prod, state: retrying}
      - eval_time: 10m
        alertname: RegScaleLoginsRejected
        exp_alerts:
          - exp_labels: {severity: warning, instance: hours, profile: prod, result: rejected}
"""


def fleet_rules():
    with open(os.path.join(SOURCE_ROOT, "docs", "fleet.md")) as f:
        blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    rules = [b for b in blocks if b.startswith("groups:")]
    assert len(rules) == 1, "docs/fleet.md: one ```yaml block of alert rules (groups:)"
    return rules[0]


def promtool(workdir, *args):
    p = subprocess.run([PROMTOOL] + list(args), cwd=workdir, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


@pytest.mark.skipif(not PROMTOOL, reason="promtool is not installed (Debian: prometheus)")
def test_fleet_alert_rules(workdir):
    with open(os.path.join(workdir, "rules.yml"), "w") as f:
        f.write(fleet_rules())
    rc, out = promtool(workdir, "check", "rules", "rules.yml")
    assert rc == 0, out
    with open(os.path.join(workdir, "cases.yml"), "w") as f:
        f.write(CASES)
    rc, out = promtool(workdir, "test", "rules", "cases.yml")
    assert rc == 0 and "SUCCESS" in out, out
