"""The installed `cloak` command, as the plug-in uses it: where it is, the choices it offers
(`cloak settings --json`), the arguments of a protect run and what its output lines say."""
import json
import os
import shutil
import subprocess


class CloakError(Exception):
    """A failure the artist can act on, in one line."""


NOT_FOUND = ("Cloak's program `cloak` was not found on PATH: install it (see the README, "
             "`cmake --install build`) or give its path in Protect with Cloak's settings.")


def find_cloak(configured=""):
    """The path of the `cloak` program: `configured` when it is one, else the one on PATH."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise CloakError(f"{configured}: not an executable `cloak` program. " + NOT_FOUND)
    found = shutil.which("cloak")
    if not found:
        raise CloakError(NOT_FOUND)
    return found


def one_line(text):
    """The message a failed run printed: its last line, without the program's `cloak: `."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    line = lines[-1] if lines else "cloak failed without saying why"
    return line[len("cloak: "):] if line.startswith("cloak: ") else line


def settings_listing(cloak):
    """Every mode, strength, effort and decoy the installed cloak offers, with its defaults."""
    try:
        run = subprocess.run([cloak, "--json", "settings"], capture_output=True, text=True,
                             timeout=60, check=False)
    except OSError as e:
        raise CloakError(f"{cloak}: cannot run it ({e.strerror})") from e
    if run.returncode != 0:
        raise CloakError(f"{cloak} settings: {one_line(run.stderr + run.stdout)}")
    return json.loads(run.stdout)


def protect_arguments(choices, source, output):
    """The arguments of `cloak protect` for `choices` (names from the listing)."""
    args = ["--json", "--progress-json", "protect", source, "-o", output,
            "--mode", choices["mode"], "--strength", choices["strength"],
            "--preset", choices["preset"], "--invisible-at", choices["invisible_at"],
            "--seed", str(choices["seed"])]
    if choices.get("target"):
        args += ["--target", choices["target"]]
    elif choices["mode"] == "cloak":
        args += ["--decoy", choices["decoy"]]
    return args


def progress_of(line):
    """(fraction, seconds left) from a --progress-json line, or None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        p = json.loads(line)
        return float(p["fraction"]), int(p["eta_s"])
    except (ValueError, KeyError, TypeError):
        return None


def summary(report, listing):
    """What the run achieved, in the terms the command line reports it."""
    strength = next(s for s in listing["strengths"] if s["name"] == report["settings"]["strength"])
    q = report["quality"]
    shifts = ", ".join(f"{s['name'].split('_')[0]} {s['latent_shift_jpeg75']:.2f}"
                       for s in report["surrogates"])
    v = report["verdict"]
    return (f"Protected in {report['seconds']:.1f} s: PSNR {q['psnr_db']:.1f} dB, SSIM "
            f"{q['ssim']:.3f}, Butteraugli {q['butteraugli_max']:.2f} (1 is just visible). "
            f"Latent shift after a JPEG q75: {shifts}, {v['multiple_of_floor_jpeg75']:.2f}x what "
            f"plain noise as visible keeps: {'protected' if v['protected'] else 'NOT protected'} "
            f"({strength['name']} asks for {strength['min_shift_jpeg75']:.2f} and "
            f"{strength['min_floor_multiple']:.2f}x). Noisy upscaling or purification can still "
            "remove it: `cloak audit` measures what survives.")
