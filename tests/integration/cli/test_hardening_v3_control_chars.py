"""Control characters in a profile value or a path variable (issue 26, item 22): a newline in
`slurm.account` or in $LAUNCH_RUNS split the `#SBATCH` lines and sbatch refused the script
(`Unmatched '`). Now validation refuses it: one line naming the file and the key (or the variable),
exit 2, nothing submitted or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Launch

PROFILE = """\
name: hostile
backend: slurm
gpu: {type: a800, memory_gb: 80, per_node: 8, bf16: true}
node: {cpus: 16, mem_gb: 16}
slurm:
"""


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ('  partition: gpu\n  account: "acct\\n#SBATCH --x \'y"\n', "slurm.account"),
        ('  partition: "gpu\\n"\n', "slurm.partition"),
        ('  partition: gpu\n  setup: ["echo a\\r"]\n', "slurm.setup"),
    ],
)
def test_a_newline_in_a_profile_value_is_refused_before_submitting(
    launch: Launch, tmp_path: Path, lines: str, key: str
) -> None:
    clusters = tmp_path / "home" / "clusters"
    clusters.mkdir(parents=True)
    profile = clusters / "hostile.yaml"
    profile.write_text(PROFILE + lines)
    proc = launch("recipe", "tiny_smoke", "--cluster", "hostile", "--set", "train.max_steps=1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {profile}: {key}: ") and "control character" in line, line
    assert proc.stdout == "" and not (tmp_path / "runs").exists()
    assert not (tmp_path / "home" / "registry.db").exists()


@pytest.mark.parametrize("variable", ["LAUNCH_RUNS", "LAUNCH_HOME"])
def test_a_newline_in_a_path_variable_is_refused(
    launch: Launch, launch_env: dict[str, str], tmp_path: Path, variable: str
) -> None:
    launch_env[variable] = str(tmp_path / "ru\nns")
    proc = launch("recipe", "tiny_smoke", "--cluster", "dev-slurm", "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: ${variable}: ") and "control character" in line, line
    assert "#SBATCH" not in proc.stdout and not (tmp_path / "ru\nns").exists()
