"""sbatch.sh, sbatch_pretrain.sh and sbatch_sweep.sh against a real single-node Slurm (no mock): munged + slurmctld + slurmd.

When slurm-wlm or munge is missing and we are root (CI), they are installed with
apt-get.  The daemons run in the foreground from a private folder (own munge key and
socket, own ports, own state), the real sbatch.sh is submitted with a tiny CPU configuration
and waited for by polling `scontrol` (`sbatch --wait` sleeps ever longer between its polls
and returns up to half a minute after the job), and exactly the daemons started here are
stopped, by process id.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import torch

import evaluation
from analysis.sweep_summary import aggregate
from data import prepare_lm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"
DAEMONS = ("munged", "slurmctld", "slurmd")
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE", "PREEMPTED")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Slurm needs Linux")]


def which(name):
    return shutil.which(name, path=SEARCH_PATH)


def ensure_slurm_installed():
    """Install slurm-wlm and munge with apt-get when missing (root only), else skip."""
    missing = [b for b in (*DAEMONS, "sbatch", "sinfo") if not which(b)]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.skip(f"{missing} not installed and not root: cannot apt-get install "
                    "slurm-wlm munge (install them, or run as root)")
    if not which("apt-get"):
        pytest.skip(f"{missing} not installed and there is no apt-get to install slurm-wlm munge")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                     "slurm-wlm", "munge"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=170)
        if result.returncode != 0:
            pytest.skip(f"`{' '.join(command)}` failed (rc {result.returncode}), cannot test "
                        f"Slurm here: {(result.stdout + result.stderr)[-600:]}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder):
    """A slurm.conf for this host: one node with this machine's CPUs and memory."""
    node = subprocess.run([which("slurmd"), "-C"], capture_output=True, text=True,
                          check=True).stdout.splitlines()[0]  # "NodeName=vm CPUs=2 ... RealMemory=N"
    name = node.split()[0].split("=", 1)[1]
    return f"""ClusterName=buildgpt2test
SlurmctldHost={name}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.sock
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes={name} Default=YES MaxTime=INFINITE State=UP
"""


def logs(folder):
    text = ""
    for name in ("munged.out", "munged.log", "slurmctld.log", "slurmd.log"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            text += f"--- {name}\n" + open(path, errors="replace").read()[-1500:]
    return text


def wait_for_job(env, folder, job_id, timeout):
    """Poll `scontrol -o show job JOB_ID` every 0.25 s until each of its tasks (one line per
    array task) has finished; return their "STATE ExitCode=N:M" strings.  On timeout, cancel
    every job and fail with the daemons' logs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = subprocess.run([which("scontrol"), "-o", "show", "job", job_id], env=env,
                               capture_output=True, text=True).stdout.splitlines()
        fields = [re.search(r"JobState=(\S+)", line).group(1) for line in lines]
        if fields and all(state in FINISHED for state in fields):
            return [" ".join(re.search(pattern, line).group(0)
                             for pattern in (r"(?<=JobState=)\S+", r"ExitCode=\S+"))
                    for line in lines]
        time.sleep(0.25)
    subprocess.run([which("scancel"), "--user=root"], env=env)
    pytest.fail(f"job {job_id} did not finish within {timeout} s\n" + logs(folder))


def submit(slurm, script, options, cwd, job_env, timeout):
    """`sbatch --parsable OPTIONS SCRIPT` in CWD, waited for; return (job id, its states)."""
    env, folder = slurm
    result = subprocess.run([which("sbatch"), "--parsable", *options, script], cwd=cwd,
                            env=job_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr + logs(folder)
    job_id = result.stdout.strip().split(";")[0]
    return job_id, wait_for_job(env, folder, job_id, timeout)


@pytest.fixture(scope="module")
def slurm():
    """Start munged, slurmctld and slurmd; yield the environment for the client commands."""
    ensure_slurm_installed()
    # munged wants its socket folder and every parent searchable by all (pytest's are 0700).
    folder = tempfile.mkdtemp(prefix="build-gpt2-slurm-")
    os.chmod(folder, 0o755)
    for sub in ("state", "spool"):
        os.makedirs(os.path.join(folder, sub))
    key = os.path.join(folder, "munge.key")
    with open(key, "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(key, 0o600)
    conf = os.path.join(folder, "slurm.conf")
    with open(conf, "w") as f:
        f.write(slurm_conf(folder))
    env = {**os.environ, "SLURM_CONF": conf}
    commands = [
        [which("munged"), "--foreground", f"--socket={folder}/munge.sock", f"--key-file={key}",
         f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
         f"--seed-file={folder}/munged.seed"],
        [which("slurmctld"), "-D", "-f", conf],
        [which("slurmd"), "-D", "-f", conf],
    ]
    started = []
    try:
        for command in commands:
            name = os.path.basename(command[0])
            with open(os.path.join(folder, f"{name}.out"), "wb") as out:
                started.append(subprocess.Popen(command, env=env, stdout=out,
                                                stderr=subprocess.STDOUT))
            if command[0].endswith("munged"):
                deadline = time.time() + 20
                while not os.path.exists(f"{folder}/munge.sock") and time.time() < deadline:
                    time.sleep(0.1)
        deadline, state = time.time() + 60, ""
        while time.time() < deadline:
            state = subprocess.run([which("sinfo"), "-h", "-o", "%T"], env=env,
                                   capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            assert all(p.poll() is None for p in started), "a daemon exited\n" + logs(folder)
            time.sleep(0.5)
        assert state == "idle", f"node state {state!r}\n" + logs(folder)
        yield env, folder
    finally:
        for process in reversed(started):  # exactly the daemons started above, by pid
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_sbatch_declares_one_gpu():
    directives = [line.split()[1] for line in open(os.path.join(REPO, "sbatch.sh"))
                  if line.startswith("#SBATCH")]
    assert "--gres=gpu:1" in directives and "--output=slurm-%j.out" in directives


def test_sbatch_runs_the_three_tasks(slurm, make_checkpoint, data_dir, tmp_path):
    env, folder = slurm
    data = tmp_path / "data"
    subprocess.run([sys.executable, os.path.join(REPO, "data", "prepare.py"), "--from",
                    str(data_dir / "cs224n"), "--tokenizer", str(data_dir / "gpt2-tokenizer"),
                    "--out", str(data)], check=True, capture_output=True, timeout=120)
    for name in ("ids-sst-dev.csv", "ids-sst-test-student.csv", "quora-dev.csv",
                 "quora-test-student.csv"):
        lines = (data / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (data / name).write_text("".join(lines[:21]), encoding="utf-8")
    checkpoint = make_checkpoint(vocab_size=50257, max_position_embeddings=128)
    predictions, job_dir = tmp_path / "predictions", tmp_path / "job"
    job_dir.mkdir()
    job_env = {
        **env, "HF_HUB_OFFLINE": "1", "BUILD_GPT2_REPO": REPO, "PYTHON": sys.executable,
        "DEVICE_ARGS": "", "MODEL_ARGS": f"--model_path {checkpoint}",
        "COMMON_ARGS": f"--data_dir {data} --tokenizer {data}/gpt2-tokenizer "
                       f"--out_dir {predictions}",
        "CLASSIFIER_ARGS": f"--task sst --fine-tune-mode full-model --epochs 1 "
                           f"--max_train_examples 8 --max_length 64 "
                           f"--checkpoint_dir {tmp_path}/out",
        "PARA_ARGS": f"--epochs 1 --max_train_examples 8 --checkpoint_dir {tmp_path}/out",
        "SONNET_ARGS": f"--epochs 1 --max_train_examples 2 --max_new_tokens 8 "
                       f"--checkpoint_dir {tmp_path}/out",
    }
    job_id, states = submit(slurm, os.path.join(REPO, "sbatch.sh"),
                            ["--gres=none", "--cpus-per-task=1", "--mem=1G", "--time=00:10:00"],
                            job_dir, job_env, timeout=170)
    output = job_dir / f"slurm-{job_id}.out"
    text = output.read_text() if output.exists() else "(no output file)"
    assert states == ["COMPLETED ExitCode=0:0"], f"{states}\n{text}\n{logs(folder)}"
    for expected in ("[sst] epoch 1/1", "[para] epoch 1/1", "[sonnet] dev chrF", "done"):
        assert expected in text, text
    for name in ("sst-dev-output.csv", "sst-test-output.csv", "para-dev-output.csv",
                 "para-test-output.csv"):
        rows, errors = evaluation.read_predictions(predictions / name)
        assert len(rows) == 20 and errors == []
    for name in ("generated_sonnets_dev.txt", "generated_sonnets.txt"):
        assert len(evaluation.read_sonnets(predictions / name)) == 12


def test_sbatch_pretrain_runs_as_a_two_task_job_through_the_rendezvous(slurm, tmp_path):
    """Two Slurm tasks on the one node: srun starts two torchruns that meet through the c10d
    rendezvous, one rank each (gloo), and train one model together."""
    env, folder = slurm
    text = tmp_path / "input.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 200, encoding="utf-8")
    data, out, job_dir = tmp_path / "chars", tmp_path / "run", tmp_path / "job"
    subprocess.run([sys.executable, os.path.join(REPO, "data", "prepare_lm.py"), "--input",
                    str(text), "--tokenizer", "bytes", "--out_dir", str(data)], check=True,
                   capture_output=True, timeout=120)
    job_dir.mkdir()
    job_env = {
        **env, "BUILD_GPT2_REPO": REPO, "PYTHON": sys.executable, "DEVICE_ARGS": "--device cpu",
        "NPROC_PER_NODE": "1", "RDZV_PORT": str(free_port()),
        "PRETRAIN_ARGS": f"--data_dir {data} --out_dir {out} --n_layer 1 --n_head 2 "
                         "--n_embd 32 --block_size 32 --batch_size 4 "
                         "--gradient_accumulation_steps 2 --max_iters 4 --warmup_iters 1 "
                         "--eval_interval 2 --eval_iters 2 --num_samples 0",
    }
    job_id, states = submit(slurm, os.path.join(REPO, "sbatch_pretrain.sh"),
                            ["--gres=none", "--ntasks-per-node=2", "--cpus-per-task=1",
                             "--mem=1G", "--time=00:10:00"],
                            job_dir, job_env, timeout=400)  # two ranks on 2 cores beside a worker
    output = job_dir / f"slurm-{job_id}.out"
    text = output.read_text() if output.exists() else "(no output file)"
    assert states == ["COMPLETED ExitCode=0:0"], f"{states}\n{text}\n{logs(folder)}"
    assert "2 torchrun(s) x 1 rank(s)" in text and "2 process(es) on cpu" in text, text
    assert "done" in text, text
    state = torch.load(out / "ckpt.pt", weights_only=False)
    assert state["iter_num"] == 4 and len(state["rng"]) == 2


def test_sweep_runs_as_a_job_array_one_task_per_run(slurm, tmp_path):
    """`sweep.py slurm` submits one array of two tasks (sbatch_sweep.sh, each `sweep.py
    run-one`); both runs finish, each in its own task, and aggregate into two rows."""
    env, folder = slurm
    text = tmp_path / "input.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 200, encoding="utf-8")
    prepare_lm.main(["--input", str(text), "--tokenizer", "bytes", "--out_dir",
                     str(tmp_path / "chars")])
    grid = tmp_path / "grid.toml"
    grid.write_text('seeds = [0]\n[base]\nn_layer = 1\nn_head = 2\nn_embd = 32\n'
                    'block_size = 32\nbatch_size = 4\nmax_iters = 3\nwarmup_iters = 1\n'
                    'eval_interval = 3\neval_iters = 2\nnum_samples = 0\n'
                    '[grid]\nattention_variant = ["softmax", "attn_bias"]\n', encoding="utf-8")
    out, job_dir = tmp_path / "sweep", tmp_path / "job"
    job_dir.mkdir()
    command = [sys.executable, os.path.join(REPO, "sweep.py"), "slurm", str(grid), "--out_dir",
               str(out), "--data_dir", str(tmp_path / "chars"), "--sbatch_args",
               "--gres=none --cpus-per-task=1 --mem=1G --time=00:10:00"]
    result = subprocess.run(command, cwd=job_dir, env={**env, "PATH": SEARCH_PATH},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + logs(folder)
    job_id = result.stdout.strip().splitlines()[-1].split(";")[0]  # sbatch --parsable's line
    states = wait_for_job(env, folder, job_id, timeout=170)
    outputs = sorted(out.glob("slurm-*_*.out"))
    text = "".join(f"--- {path.name}\n{path.read_text()}" for path in outputs)
    assert states == ["COMPLETED ExitCode=0:0"] * 2, f"{states}\n{text}\n{logs(folder)}"
    assert "--array=0-1" in result.stdout
    assert [path.name.rsplit("_", 1)[1] for path in outputs] == ["0.out", "1.out"], text
    names = ["attention_variant=softmax,seed=0", "attention_variant=attn_bias,seed=0"]
    for index, (path, name) in enumerate(zip(outputs, names, strict=True)):
        assert f"{index + 1}/2 {name}: new" in path.read_text(), text
        assert torch.load(out / name / "ckpt.pt", weights_only=False)["iter_num"] == 3
    rows = aggregate([out], out, windows=2)
    assert [row["run"] for row in rows] == names and all(row["iter"] == 3 for row in rows)
