"""Issue 25's figures (not part of the test run): 12 images protected as a Slurm array on the
one-node cluster the tests start, against one `cloak batch` of the same images, and the time a
catalogue-sized image takes, for the estimate of a whole catalogue. Run as root:

    python3 bench/slurm_array.py build/cli/cloak WIDTH [BIG_WIDTH]

The 12 images are WIDTH x 3/4 WIDTH, made by the test's generator (smooth ramps and texture; the
time depends on the size and settings, not the content). Default settings (guard, medium,
balanced). Configurations, one after another, each into a fresh folder:
  batch      one `cloak batch` over the list, all cores
  array 4x1  the documented array script, --array=0-3 --cpus-per-task=1
  array 2x2  --array=0-1 --cpus-per-task=2
With BIG_WIDTH, `cloak protect` on one BIG_WIDTH x 3/4 image: seconds per megapixel at that size.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "slurm"))
from one_node_cluster import OneNodeCluster  # noqa: E402
from run import SCRIPT, write_png  # noqa: E402


def main(cloak, width, big_width=None):
    cloak = os.path.abspath(cloak)
    work = os.path.abspath("build/slurm-bench")
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(os.path.join(work, "art"))
    height = width * 3 // 4
    names = [f"art/img{i:02d}.png" for i in range(12)]
    for i, name in enumerate(names):
        write_png(os.path.join(work, name), width, height, i)
    with open(os.path.join(work, "catalogue.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    megapixels = 12 * width * height / 1e6
    rows = []
    t = time.monotonic()
    subprocess.run([cloak, "-q", "batch", "catalogue.txt", "-o", "batch"], cwd=work, check=True)
    rows.append(("one `cloak batch`, 2 threads", time.monotonic() - t))
    with OneNodeCluster(os.path.join(work, "cluster")) as cluster:
        for label, array, cpus in (("array 0-3, --cpus-per-task=1", "0-3", 1),
                                   ("array 0-1, --cpus-per-task=2", "0-1", 2)):
            shards = str(int(array.split("-")[1]) + 1)
            t = time.monotonic()
            job = cluster.sbatch([f"--array={array}", f"--cpus-per-task={cpus}", "--mem=2G",
                                  "--chdir=" + work, "--output=" + work + "/%A_%a.log", SCRIPT],
                                 {"SHARDS": shards, "OUT": "array" + array, "CLOAK": cloak})
            states = cluster.wait_for(job, 3600)
            rows.append((label, time.monotonic() - t))
            assert all(s == "COMPLETED" for s in states.values()), states
    print(f"12 images of {width}x{height} ({megapixels:.2f} MP in all)")
    print("| run | wall time | per image | per megapixel |\n|---|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} s | {seconds / 12:.2f} s | {seconds / megapixels:.1f} s |")
    if big_width:
        big = os.path.join(work, "big.png")
        write_png(big, big_width, big_width * 3 // 4, 7)
        t = time.monotonic()
        subprocess.run([cloak, "-q", "protect", big, "-o", big + ".out.png"], check=True)
        seconds = time.monotonic() - t
        mp = big_width * (big_width * 3 // 4) / 1e6
        print(f"one {big_width}x{big_width * 3 // 4} image ({mp:.2f} MP): {seconds:.1f} s, "
              f"{seconds / mp:.1f} s per megapixel")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
