"""Cloak on a real Slurm cluster (one node, 127.0.0.1): the array recipe of docs/cluster.md as
written, 12 images over 4 array tasks. Fails, never skips, when Slurm cannot start.

    python3 run.py CLOAK BUILD_DIR

1. A fresh array over the 12 images and one corrupt one: every image protected exactly once (each
   output's SHA-256 is the one its shard's manifest recorded, and no key is in two manifests), the
   corrupt one's task FAILED with its line recorded, the other tasks COMPLETED, and `cloak batch
   status` says 12 done, 1 failed, names the file and exits 3.
2. A fresh array with one task cancelled half-way (scancel) and another warned of its time limit
   (USR1, as --signal sends it), which stops cloak and requeues itself; then the array resubmitted:
   nothing lost, nothing redone (every output finished before keeps its inode and time), no
   temporary file left, and status exits 0 with 12 done.
"""
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from one_node_cluster import OneNodeCluster  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "cluster",
                      "cloak-array.sbatch")
failures = []
T0 = time.monotonic()


def check(ok, what):
    print(f"{time.monotonic() - T0:5.1f} s  " + ("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def write_png(path, width, height, seed):
    """An 8-bit RGB PNG of smooth ramps and a little texture, made here (no imaging library)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes(((x * 2 + seed * 37) % 256, (y * 2 + x // 3) % 256,
                           (x * y // 16 + seed * 11) % 256))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b""))


def manifests(out):
    """Each shard's manifest with its journal folded in, as cloak reads them: one JSON line per
    change of an entry, a last line cut short (being written) left out."""
    found = {}
    for name in sorted(os.listdir(out)):
        if name.startswith("cloak-manifest.") and name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                m = json.load(f)
            journal = os.path.join(out, name + ".journal")
            if os.path.exists(journal):
                with open(journal) as f:
                    for line in f.read().split("\n")[:-1]:
                        change = json.loads(line)
                        m["files"][change["key"]] = change["entry"]
            found[name] = m
    return found


def outputs(out):
    """{relative path: (inode, mtime_ns)} of the protected images."""
    result = {}
    for root, _, files in os.walk(out):
        for name in files:
            if name.endswith(".png"):
                st = os.stat(os.path.join(root, name))
                result[os.path.relpath(os.path.join(root, name), out)] = (st.st_ino, st.st_mtime_ns)
    return result


def sha256(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def status(cloak, out):
    r = subprocess.run([cloak, "batch", "status", out, "--json"], capture_output=True, text=True)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else {}), r


def submit(cluster, work, out, tag, cloak):
    env = {"SHARDS": "4", "LIST": "catalogue.txt", "OUT": out, "CLOAK": cloak,
           "CLOAK_OPTIONS": "--preset fast"}
    return cluster.sbatch(["--array=0-3", "--cpus-per-task=1", "--mem=1G", "--chdir=" + work,
                           "--output=" + os.path.join(work, f"{tag}-%a.log"), SCRIPT], env)


def log_of(work, tag, task):
    with open(os.path.join(work, f"{tag}-{task}.log"), errors="replace") as f:
        return f.read()


def main(cloak, build):
    cloak = os.path.abspath(cloak)
    work = os.path.join(os.path.abspath(build), "slurm-test")
    cluster_dir = os.path.join(work, "cluster")
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        if name != "cluster":
            subprocess.run(["rm", "-rf", os.path.join(work, name)], check=True)
    images = [f"{folder}img{i:02d}.png" for i, folder in
              enumerate(["", "", "", "", "", "", "sub/", "sub/", "sub/", "sub/", "deep/er/",
                         "deep/er/"])]
    for i, rel in enumerate(images):
        os.makedirs(os.path.dirname(os.path.join(work, "art", rel)), exist_ok=True)
        write_png(os.path.join(work, "art", rel), 128, 96, i)
    write_png(os.path.join(work, "art", "broken.png"), 128, 96, 99)
    with open(os.path.join(work, "art", "broken.png"), "r+b") as f:
        f.truncate(200)
    with open(os.path.join(work, "catalogue.txt"), "w") as f:
        f.write("".join(f"art/{rel}\n" for rel in images + ["broken.png"]))

    started = time.monotonic()
    with OneNodeCluster(cluster_dir) as cluster:
        print(f"cluster up in {time.monotonic() - started:.1f} s", flush=True)

        # 1. The whole array, a corrupt image among the 12.
        t0 = time.monotonic()
        job = submit(cluster, work, "out1", "one", cloak)
        states = cluster.wait_for(job)
        print(f"array of 4 over 13 images: {time.monotonic() - t0:.1f} s", flush=True)
        out = os.path.join(work, "out1")
        found = manifests(out)
        check(len(found) == 4, f"four shard manifests: {sorted(found)}")
        keys = [k for m in found.values() for k in m["files"]]
        check(sorted(keys) == sorted(["art/" + r for r in images] + ["art/broken.png"]),
              "every image in exactly one shard's manifest")
        done = {k: e for m in found.values() for k, e in m["files"].items()
                if e.get("status") == "done"}
        check(len(done) == 12, f"12 done ({len(done)})")
        check(all(sha256(os.path.join(out, e["output"])) == e["output_sha256"]
                  for e in done.values()), "each output is the one its manifest recorded")
        broken_task = next(int(n.split(".")[1].split("-")[0]) for n, m in found.items()
                           if "art/broken.png" in m["files"])
        check(states[broken_task] == "FAILED" and
              all(s == "COMPLETED" for t, s in states.items() if t != broken_task),
              f"the corrupt image's task FAILED, the others COMPLETED: {states}")
        code, st, r = status(cloak, out)
        check(code == 3, f"status exits 3 when some failed ({code}) {r.stderr.strip()}")
        check(st.get("images") == {"done": 12, "failed": 1, "running": 0, "pending": 0},
              f"status counts {st.get('images')}")
        check([f["image"] for f in st.get("failed", [])] == ["art/broken.png"] and
              st["failed"][0]["error"].startswith("art/broken.png: "),
              f"status names the corrupt file: {st.get('failed')}")
        text = subprocess.run([cloak, "batch", "status", out], capture_output=True, text=True)
        check("12 done, 1 failed" in text.stdout and "  art/broken.png: " in text.stdout,
              "the text view says so too:\n" + text.stdout)

        # 2. One task cancelled half-way, then the whole array resubmitted.
        with open(os.path.join(work, "catalogue.txt"), "w") as f:
            f.write("".join(f"art/{rel}\n" for rel in images))
        out = os.path.join(work, "out2")
        job = submit(cluster, work, out, "two", cloak)
        # The first task caught half-way is cancelled; the second is told its time is nearly up
        # (the USR1 that --signal sends), stops cloak and requeues itself, as the recipe says.
        victims = []
        deadline = time.monotonic() + 300
        while len(victims) < 2 and time.monotonic() < deadline:
            for name, m in manifests(out).items() if os.path.isdir(out) else []:
                task = int(name.split(".")[1].split("-")[0])
                done_here = sum(e.get("status") == "done" for e in m["files"].values())
                if task in victims or not 0 < done_here < m.get("images", 0):
                    continue
                if not victims:
                    cluster.run(["scancel", f"{job}_{task}"])
                else:
                    cluster.run(["scancel", "--batch", "--signal=USR1", f"{job}_{task}"])
                    cluster.start_now(f"{job}_{task}")
                victims.append(task)
                break
            time.sleep(0.05)
        check(len(victims) == 2, f"two tasks caught after their first image, before their last: "
                                 f"{victims}")
        states = cluster.wait_for(job)
        cancelled, requeued = (victims + [None, None])[:2]
        check(states.get(cancelled) == "CANCELLED", f"the cancelled task is CANCELLED: {states}")
        restarts = cluster.run(["scontrol", "show", "job", f"{job}_{requeued}"])
        check(states.get(requeued) == "COMPLETED" and "Restarts=1" in restarts,
              f"the requeued task ran again and COMPLETED: {states}")
        summary = log_of(work, "two", requeued).strip().splitlines()[-1:]
        check(bool(summary) and " protected, " in summary[0] and "0 already done" not in summary[0],
              f"the requeued task resumed after what it had finished: {summary}")
        code, st, _ = status(cloak, out)
        shard = next(s for s in st["shards"] if s["shard"] == f"{cancelled}/4")
        check(code == 1 and st["images"]["pending"] > 0 and st["images"]["done"] < 12,
              f"status exits 1 with images pending ({code}, {st['images']})")
        check(shard["running_on"] is None and shard["interrupted"],
              "the cancelled shard is interrupted, not running")
        before = outputs(out)
        finished = {k: e["output"] for m in manifests(out).values() for k, e in m["files"].items()
                    if e.get("status") == "done"}
        job = submit(cluster, work, out, "three", cloak)
        states = cluster.wait_for(job)
        check(all(s == "COMPLETED" for s in states.values()), f"resubmitted: {states}")
        after = outputs(out)
        check(len(after) == 12, f"12 outputs ({len(after)})")
        check(all(after.get(rel) == before[rel] for rel in before),
              "nothing finished was redone (inodes and times kept)")
        check(len(before) == len(finished), "every output before resubmitting was a finished one")
        # The batch's closing tally, not a file's own verdict ("... NOT protected").
        redone = sum(int(re.search(r"cloak: (\d+) protected,", log_of(work, "three", t)).group(1))
                     for t in range(4))
        check(redone == 12 - len(finished),
              f"the resubmission protected just the {12 - len(finished)} left ({redone})")
        temps = [n for _, _, files in os.walk(out) for n in files if ".cloak-" in n]
        check(not temps, f"no temporary file left: {temps}")
        code, st, _ = status(cloak, out)
        check(code == 0 and st["images"] == {"done": 12, "failed": 0, "running": 0, "pending": 0},
              f"status: all 12 done, exit 0 ({code}, {st['images']})")
    print(f"total {time.monotonic() - started:.1f} s")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
