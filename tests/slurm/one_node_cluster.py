"""A real one-node Slurm cluster on 127.0.0.1 for the tests and the benchmark: Debian 12's munge,
slurmctld and slurmd started as plain processes (no systemd), as root, in a folder of their own,
and stopped by their PIDs whatever happens.

    with OneNodeCluster(folder) as cluster:
        job = cluster.sbatch(["--array=0-3", "script.sbatch"])
        cluster.wait_for(job)
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time


class SlurmError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OneNodeCluster:
    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.daemons = []  # (name, Popen)
        self.env = dict(os.environ, SLURM_CONF=os.path.join(self.folder, "slurm.conf"))

    def __enter__(self):
        # A SIGTERM (a timeout, Ctrl-C's cousin) unwinds through __exit__ and stops the daemons.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _path(self, *parts):
        return os.path.join(self.folder, *parts)

    def _start(self):
        if os.geteuid() != 0:
            raise SlurmError("the one-node Slurm cluster runs its daemons as root; run as root")
        for tool in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel"):
            if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
                raise SlurmError(tool + " is missing: bash scripts/setup.sh installs Slurm and munge")
        shutil.rmtree(self.folder, ignore_errors=True)
        for d in ("state", "spool", "log", "munge"):
            os.makedirs(self._path(d))
        # munge: its own key and socket, owned by the munge user as munged insists.
        munge = pwd.getpwnam("munge")
        key = self._path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        os.chmod(self._path("munge"), 0o700)
        for p in (self._path("munge"), key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        self.munge_socket = self._path("munge", "munge.socket")
        self._daemon("munged", ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground",
                                "--force", "--key-file", key, "--socket", self.munge_socket,
                                "--pid-file", self._path("munge", "munged.pid"),
                                "--seed-file", self._path("munge", "munged.seed"),
                                "--log-file", self._path("munge", "munged.log")])
        self._wait(lambda: os.path.exists(self.munge_socket), 10, "munged did not start")
        host = socket.gethostname().split(".")[0]
        node = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
        cpus = re.search(r"CPUs=(\d+)", node).group(1)
        memory = int(re.search(r"RealMemory=(\d+)", node).group(1))
        self.cpus = int(cpus)
        conf = f"""ClusterName=cloak-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={self._path("state")}
SlurmdSpoolDir={self._path("spool")}
SlurmctldPidFile={self._path("slurmctld.pid")}
SlurmdPidFile={self._path("slurmd.pid")}
SlurmctldLogFile={self._path("log", "slurmctld.log")}
SlurmdLogFile={self._path("log", "slurmd.log")}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
SchedulerParameters=sched_interval=1,bf_interval=1
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={max(memory - 1024, 512)} State=UNKNOWN
PartitionName=cloak Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.env["SLURM_CONF"], "w") as f:
            f.write(conf)
        self._daemon("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i"])
        self._daemon("slurmd", ["/usr/sbin/slurmd", "-D"])
        self._wait(lambda: self.run(["sinfo", "-h", "-o", "%T"], check=False).strip() == "idle",
                   60, "the node never became idle")

    def _daemon(self, name, argv):
        log = open(self._path("log", name + ".out"), "w")
        self.daemons.append((name, subprocess.Popen(argv, env=self.env, stdout=log,
                                                    stderr=subprocess.STDOUT,
                                                    start_new_session=True)))

    def _wait(self, ready, seconds, why):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, p in self.daemons:
                if p.poll() is not None:
                    raise SlurmError(f"{name} exited ({p.returncode}): " + self.logs())
            if ready():
                return
            time.sleep(0.1)
        raise SlurmError(why + ": " + self.logs())

    def logs(self):
        text = ""
        for name in sorted(os.listdir(self._path("log"))):
            with open(self._path("log", name), errors="replace") as f:
                text += f"\n--- {name}\n" + "".join(f.readlines()[-15:])
        return text

    def stop(self):
        # Jobs first, so that no slurmstepd outlives the daemons that started it.
        if self.daemons and all(p.poll() is None for _, p in self.daemons):
            subprocess.run(["scancel", "--full", "--user=root"], env=self.env,
                           capture_output=True, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.run(["squeue", "-h"], check=False).strip():
                time.sleep(0.2)
        for name, p in reversed(self.daemons):
            if p.poll() is None:
                os.killpg(p.pid, 15)
        for name, p in reversed(self.daemons):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
        self.daemons = []

    def run(self, argv, check=True):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SlurmError(" ".join(argv) + ": " + (r.stderr or r.stdout).strip())
        return r.stdout

    def sbatch(self, args, env=None):
        r = subprocess.run(["sbatch", "--parsable"] + args, env=dict(self.env, **(env or {})),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SlurmError("sbatch " + " ".join(args) + ": " + r.stderr.strip())
        return r.stdout.strip().split(";")[0]

    def states(self, job):
        """{array task: state} of a job that the controller still knows."""
        out = self.run(["squeue", "-h", "-r", "-t", "all", "-j", job, "-o", "%K %T"], check=False)
        return {int(k) if k.isdigit() else 0: s
                for k, s in (line.split() for line in out.splitlines() if line.strip())}

    def start_now(self, task, seconds=60):
        """Once `task` has requeued itself, starts it in two seconds: Slurm holds a requeued task
        back for two minutes (BeginTime). Not at once: a launch within the second its old
        credential was revoked is refused ("Job credential revoked") and the task fails. The
        scheduler looks every second (sched_interval=1): with Slurm's default minute, a task
        requeued after the others had ended waited past the minute, nothing else waking it."""
        deadline = time.monotonic() + seconds
        moved = 0.0  # when StartTime was last brought forward
        while time.monotonic() < deadline:
            info = self.run(["scontrol", "show", "job", task], check=False)
            restarted = re.search(r"Restarts=([1-9])", info)
            if restarted and re.search(r"JobState=(RUNNING|COMPLETED|FAILED|CANCELLED)", info):
                return
            if restarted and "JobState=PENDING" in info and time.monotonic() - moved > 10:
                self.run(["scontrol", "update", "JobId=" + task, "StartTime=now+2"], check=False)
                moved = time.monotonic()
            time.sleep(0.2)
        raise SlurmError(f"{task} did not start again in {seconds} s:\n" + info + self.logs())

    def wait_for(self, job, seconds=600):
        """Waits until every task of `job` has ended; returns {task: state}."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            states = self.states(job)
            if states and all(s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING",
                                        "REQUEUED", "SUSPENDED") for s in states.values()):
                return states
            time.sleep(0.3)
        raise SlurmError(f"job {job} did not finish in {seconds} s: {self.states(job)}"
                         + self.logs())
