"""The Kubernetes recipe's pod, as far as this machine allows without a cluster: the container's
shell from docs/cluster/cloak-indexed-job.yaml, run as Kubernetes runs it (/bin/sh -c), with the
Job's settings checked against it.

1. With a stand-in cloak: SIGTERM to the shell (what Kubernetes sends PID 1 when it stops a pod)
   reaches cloak within 2 s and the shell ends with cloak's own status; exit 3 ends the index as
   done, 5 (disk full) and others fail it.
2. With the real cloak, the volume's paths pointed at a folder here and JOB_COMPLETION_INDEX set:
   the shard the index names is protected (a corrupt image: exit 3, so the index is done).

Usage: run.py CLOAK_BINARY SOURCE_DIR
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

cloak, source = sys.argv[1], sys.argv[2]
failures = []


def shard_of(key, count):
    """The shard of an image's key, as cloak/pipeline/batch_shard.h defines it: FNV-1a, mixed by
    SplitMix64's finaliser."""
    mask = (1 << 64) - 1
    h = 1469598103934665603
    for byte in key.encode():
        h = ((h ^ byte) * 1099511628211) & mask
    h = ((h ^ (h >> 30)) * 0xbf58476d1ce4e5b9) & mask
    h = ((h ^ (h >> 27)) * 0x94d049bb133111eb) & mask
    return (h ^ (h >> 31)) % count


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


with open(os.path.join(source, "docs/cluster/cloak-indexed-job.yaml")) as f:
    job = yaml.safe_load(f)
spec = job["spec"]
container = spec["template"]["spec"]["containers"][0]
script = container["args"][0]
check(container["command"] == ["/bin/sh", "-c"], "the pod runs its script with /bin/sh -c")
check(spec["completionMode"] == "Indexed", "an Indexed Job")
check(f"--shard auto/{spec['completions']} " in script, "--shard auto/N with N the completions")
check("backoffLimitPerIndex" in spec and "backoffLimit" not in spec,
      "retries counted per index, not for the whole Job")
check(spec.get("podReplacementPolicy") == "Failed", "a replacement only once the old pod stopped")

work = tempfile.mkdtemp(prefix="cloak-k8s-")
try:
    # 1. A stand-in cloak that says when it starts and when it is told to stop.
    bin_dir = os.path.join(work, "bin")
    os.makedirs(bin_dir)
    fake = os.path.join(bin_dir, "cloak")
    log = os.path.join(work, "log")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\n"
                f"trap 'echo terminated >> {log}; exit 130' TERM\n"
                f"echo started >> {log}\n"
                '[ -n "$EXIT" ] && exit "$EXIT"\n'
                "while :; do sleep 0.05; done\n")
    os.chmod(fake, 0o755)
    env = dict(os.environ, PATH=bin_dir + ":" + os.environ["PATH"])

    def lines():
        return open(log).read().split() if os.path.exists(log) else []

    pod = subprocess.Popen(["/bin/sh", "-c", script], env=env)
    deadline = time.monotonic() + 10
    while "started" not in lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = time.monotonic()
    pod.send_signal(signal.SIGTERM)
    try:
        rc = pod.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pod.kill()
        rc = None
    check("terminated" in lines() and time.monotonic() - sent < 2,
          f"SIGTERM reaches cloak within 2 s ({time.monotonic() - sent:.2f} s)")
    check(rc == 130, f"the shell ends with cloak's status 130 (got {rc})")
    for code, index_done in ((0, 0), (3, 0), (5, 5), (1, 1)):
        rc = subprocess.run(["/bin/sh", "-c", script], env=dict(env, EXIT=str(code))).returncode
        check(rc == index_done, f"cloak's exit {code} ends the index with {index_done} (got {rc})")

    # 2. The real cloak, the volume at a folder of this machine's.
    data = os.path.join(work, "data")
    os.makedirs(data)
    with open(os.path.join(data, "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with open(os.path.join(data, "catalogue.txt"), "w") as f:
        f.write("broken.png\n")

    index = shard_of("broken.png", spec["completions"])
    real = script.replace("/data", data).replace("cloak batch", f"'{cloak}' batch", 1)
    run = subprocess.run(["/bin/sh", "-c", real], capture_output=True, text=True,
                         env=dict(os.environ, JOB_COMPLETION_INDEX=str(index)))
    check(run.returncode == 0 and "0 protected, 0 already done, 1 failed" in run.stderr,
          f"index {index} protects its shard; its corrupt image ends the index as done: "
          f"{run.stderr.strip()}")
    status = subprocess.run([cloak, "batch", "status", os.path.join(data, "catalogue-cloaked")],
                            capture_output=True, text=True)
    check(status.returncode == 3 and "broken.png" in status.stdout,
          f"cloak batch status names it (exit {status.returncode})")
finally:
    shutil.rmtree(work)

sys.exit(1 if failures else 0)
