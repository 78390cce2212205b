#!/usr/bin/env python3
"""The Krita plug-in's tests, in real Krita with a throw-away profile. Each fails, never skips,
when Krita (or xvfb for the GUI) is not installed.

    run.py headless CLOAK BUILD_DIR
        kritarunner (offscreen) runs protect_in_krita.py: the protect job on built documents.
    run.py gui CLOAK BUILD_DIR SCREENSHOT
        `cmake --install BUILD_DIR --component krita-plugin` into the profile, then Krita under
        xvfb-run with the plug-in and the cloak_krita_smoke harness: the action is in
        Tools > Scripts, its dialog opens with cloak's choices (SCREENSHOT), Protect at the fast
        effort shows progress, then the figures, and leaves a new layer above the painting.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))


def fail(message, log=""):
    print(log[-6000:])
    print(f"FAILED: {message}")
    sys.exit(1)


def need(program, package):
    path = shutil.which(program)
    if not path:
        fail(f"{program} not found: install {package} (scripts/setup.sh does)")
    return path


def profile(root, cloak):
    """An environment whose Krita settings, resources and temporary files live under `root`."""
    env = dict(os.environ, HOME=root, PYTHONPATH=os.path.join(SOURCE, "plugins", "krita") +
               os.pathsep + HERE, PATH=os.path.dirname(cloak) + os.pathsep + os.environ["PATH"])
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
                 "TMPDIR"):
        env[name] = os.path.join(root, name.lower())
        os.makedirs(env[name], mode=0o700)
    return env


def headless(cloak, root):
    kritarunner = need("kritarunner", "krita")
    env = dict(profile(root, cloak), QT_QPA_PLATFORM="offscreen")
    result, work = os.path.join(root, "result.json"), os.path.join(root, "work")
    os.makedirs(work)
    run = subprocess.run([kritarunner, "-s", "protect_in_krita", "-f", "main", result, cloak,
                          work], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=900, check=False)
    if not os.path.exists(result):
        fail("the script in Krita did not finish", run.stdout)
    failures = json.load(open(result))["failures"]
    if failures:
        fail("\n".join(failures), run.stdout)
    left = os.listdir(env["TMPDIR"])
    if any(name.startswith("cloak-krita-") for name in left):
        fail(f"temporary files left: {left}")


def enable_harness(env):
    pykrita = os.path.join(env["XDG_DATA_HOME"], "krita", "pykrita")
    shutil.copy(os.path.join(HERE, "cloak_krita_smoke.desktop"), pykrita)
    shutil.copytree(os.path.join(HERE, "cloak_krita_smoke"),
                    os.path.join(pykrita, "cloak_krita_smoke"))
    kritarc = os.path.join(env["XDG_CONFIG_HOME"], "kritarc")
    text = open(kritarc).read()
    with open(kritarc, "w") as f:
        f.write(text.replace("[python]\n", "[python]\nenable_cloak_krita_smoke=true\n", 1))


def gui(cloak, build, screenshot, root):
    krita, xvfb = need("krita", "krita"), need("xvfb-run", "xvfb")
    env = profile(root, cloak)
    env.pop("PYTHONPATH")  # Krita must find the plug-in where the install put it
    install = subprocess.run(["cmake", "--install", build, "--component", "krita-plugin"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, check=False)
    pykrita = os.path.join(env["XDG_DATA_HOME"], "krita", "pykrita")
    for name in ("cloak_krita.desktop", "cloak_krita/__init__.py", "cloak_krita/protect.py"):
        if install.returncode != 0 or not os.path.isfile(os.path.join(pykrita, name)):
            fail(f"cmake --install did not put {name} in {pykrita}", install.stdout)
    kritarc = os.path.join(env["XDG_CONFIG_HOME"], "kritarc")
    if "enable_cloak_krita=true" not in open(kritarc).read():
        fail("cmake --install did not enable the plug-in in kritarc", open(kritarc).read())
    enable_harness(env)
    result = os.path.join(root, "smoke.json")
    env.update(CLOAK_KRITA_SMOKE=result, CLOAK_KRITA_SCREENSHOT=screenshot)
    if os.path.exists(screenshot):
        os.remove(screenshot)
    log = open(os.path.join(root, "krita.log"), "w+")
    proc = subprocess.Popen([xvfb, "-a", "-s", "-screen 0 1280x800x24", krita, "--nosplash",
                             os.path.join(SOURCE, "samples", "dusk-lake.png")], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not os.path.exists(result):
        time.sleep(1)
    try:
        proc.wait(timeout=30)  # the harness quits Krita once it wrote the result
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.seek(0)
    if not os.path.exists(result):
        fail("Krita did not run the harness (plug-ins not loaded?)", log.read())
    seen = json.load(open(result))
    problems = list(seen["failures"])
    if seen.get("action") != "Protect with Cloak…":
        problems.append(f"action: {seen.get('action')!r}")
    if "Protect with Cloak…" not in (seen.get("scripts_menu") or []):
        problems.append(f"Tools > Scripts holds {seen.get('scripts_menu')}")
    if seen.get("dialog") != "Protect with Cloak":
        problems.append(f"the dialog: {seen.get('dialog')!r}")
    listing = json.loads(subprocess.run([cloak, "--json", "settings"], capture_output=True,
                                        text=True, check=True).stdout)
    strengths = [s["label"][0].upper() + s["label"][1:] for s in listing["strengths"]]
    if strengths not in (seen.get("choices") or {}).values():
        problems.append(f"the dialog's choices {seen.get('choices')} lack {strengths}")
    if not (seen.get("progress") or "").startswith(("Protecting with Cloak", "Measuring")):
        problems.append(f"no progress dialog (saw {seen.get('progress')!r})")
    message = seen.get("message") or ""
    if (not message.startswith("Protected in") or "Latent shift after a JPEG q75" not in message
            or "what plain noise as visible keeps" not in message):
        problems.append(f"the closing message: {message!r}")
    if seen.get("layers") != ["Background", "Cloak guard medium fast seed 0"]:
        problems.append(f"layers after Protect: {seen.get('layers')}")
    if not seen.get("screenshot") or not open(screenshot, "rb").read(8) == b"\x89PNG\r\n\x1a\n":
        problems.append("no screenshot")
    if proc.returncode != 0:
        problems.append(f"Krita exited with {proc.returncode}")
    if problems:
        fail("; ".join(problems), log.read())


def main():
    what, cloak, build = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    root = tempfile.mkdtemp(prefix="cloak-krita-test-")
    try:
        if what == "headless":
            headless(cloak, root)
        else:
            gui(cloak, build, os.path.abspath(sys.argv[4]), root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("passed")


if __name__ == "__main__":
    main()
