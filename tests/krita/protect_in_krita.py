"""The Krita plug-in's protect job in headless Krita (kritarunner), with the real `cloak`, on
documents built here. Run by tests/krita/run.py: kritarunner exits 0 whatever a script does, so
this writes what it found to a JSON file that run.py checks.

    kritarunner -s protect_in_krita -f main RESULT.json CLOAK WORK_DIR
"""
import json
import math
import os
import struct
import traceback

from krita import Krita
from PyQt5.QtCore import QByteArray, QDir, QEventLoop, QTimer

from cloak_krita import cloak_cli, dialog
from cloak_krita.protect import ProtectJob, free_name

EPS_CODES = {}  # strength name -> its L-infinity bound in 8-bit codes (from cloak's listing)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def choices(**over):
    c = {"mode": "guard", "strength": "medium", "preset": "fast", "invisible_at": "full-size",
         "decoy": "cubist", "seed": 3, "target": "", "destination": "layer"}
    c.update(over)
    return c


def painting(w, h, x, y):
    """Digital art: a smooth gradient, a hard-edged disc and fine stripes, as RGB in [0, 1]."""
    inside = (x - w * 0.6) ** 2 + (y - h * 0.45) ** 2 < (min(w, h) * 0.3) ** 2
    if inside:
        return 0.85, 0.3 + 0.2 * (y / h), 0.2
    stripe = 0.1 if (x // 3) % 2 and y > h * 0.7 else 0.0
    return 0.2 + 0.5 * x / w, 0.4 + stripe, 0.9 - 0.4 * y / h


def pixels(depth, w, h, alpha=lambda x, y: 1.0):
    """Krita's bytes (B, G, R, A; 16-bit little-endian) of `painting` at `depth`."""
    top, fmt = (255, "B") if depth == "U8" else (65535, "H")
    values = []
    for y in range(h):
        for x in range(w):
            r, g, b = painting(w, h, x, y)
            values += [round(b * top), round(g * top), round(r * top), round(alpha(x, y) * top)]
    return QByteArray(struct.pack(f"<{len(values)}{fmt}", *values))


def channels(data, depth):
    fmt = "B" if depth == "U8" else "H"
    n = len(data) // (1 if depth == "U8" else 2)
    return struct.unpack(f"<{n}{fmt}", bytes(data))


def document(name, w, h, depth, profile=""):
    doc = Krita.instance().createDocument(w, h, name, "RGBA", depth, profile, 72.0)
    doc.setBatchmode(True)
    return doc


def run(job, cancel_at=None):
    """Runs `job` to its end; returns (outcome, value, progress fractions)."""
    ended, seen, cancelled = {}, [], []
    loop = QEventLoop()

    def end(outcome, value=None):
        ended.update(outcome=outcome, value=value)
        loop.quit()

    def progress(fraction, _eta):
        seen.append(fraction)
        if cancel_at is not None and fraction >= cancel_at and not cancelled:
            cancelled.append(fraction)
            job.cancel()

    job.progress.connect(progress)
    job.finished.connect(lambda r: end("finished", r))
    job.failed.connect(lambda m: end("failed", m))
    job.cancelled.connect(lambda: end("cancelled"))
    job.start()
    QTimer.singleShot(300000, lambda: end("timed out"))
    if not ended:
        loop.exec_()
    return ended["outcome"], ended["value"], seen


def compare(before, after, depth, what, eps_codes):
    """Checks the protected pixels against the original: changed, within the strength's L-infinity
    bound and the PSNR it implies, alpha the same. Returns the PSNR over the colour channels."""
    a, b = channels(before, depth), channels(after, depth)
    if not check(len(a) == len(b), f"{what}: {len(b)} channels where the original has {len(a)}"):
        return 0
    top = 255 if depth == "U8" else 65535
    colour = [i for i in range(len(a)) if i % 4 != 3 and a[i - i % 4 + 3] > 0]
    check(all(a[i] == b[i] for i in range(3, len(a), 4)), f"{what}: alpha changed")
    worst, at = max((abs(a[i] - b[i]), i) for i in colour)
    changed = sum(a[i] != b[i] for i in colour)
    mse = sum((a[i] - b[i]) ** 2 for i in colour) / len(colour)
    psnr = 10 * math.log10(top * top / mse) if mse else float("inf")
    check(changed > len(colour) // 4, f"{what}: only {changed} of {len(colour)} values changed")
    check(worst <= eps_codes * top / 255 + 1e-9,
          f"{what}: a value moved {worst} ({worst * 255 / top:.2f} codes), over {eps_codes}, "
          f"at pixel {at // 4} channel {at % 4}: {a[at - at % 4:at - at % 4 + 4]} became "
          f"{b[at - at % 4:at - at % 4 + 4]}")
    floor = 20 * math.log10(255 / eps_codes)  # what the L-infinity bound alone guarantees
    check(floor <= psnr < 100, f"{what}: PSNR {psnr:.2f} dB outside [{floor:.2f}, 100)")
    return psnr


def eight_bit_image(cloak):
    doc = document("flat", 96, 80, "U8")
    background = doc.topLevelNodes()[0]
    background.setPixelData(pixels("U8", 96, 80), 0, 0, 96, 80)
    doc.refreshProjection()
    before = bytes(background.pixelData(0, 0, 96, 80))
    outcome, result, seen = run(ProtectJob(cloak, doc, None, choices()))
    if not check(outcome == "finished", f"8-bit image: {outcome}: {result}"):
        return
    layer = result["layer"]
    nodes = doc.topLevelNodes()
    check([n.name() for n in nodes] == ["Background", "Cloak guard medium fast seed 3"],
          f"8-bit image: layers {[n.name() for n in nodes]}")
    check(bytes(background.pixelData(0, 0, 96, 80)) == before, "8-bit image: original changed")
    check(layer.colorDepth() == "U8", f"8-bit image: the new layer is {layer.colorDepth()}")
    psnr = compare(before, layer.pixelData(0, 0, 96, 80), "U8", "8-bit image", EPS_CODES["medium"])
    reported = result["report"]["quality"]["psnr_db"]
    check(abs(psnr - reported) < 0.05, f"8-bit image: PSNR {psnr:.3f} in Krita, cloak said "
          f"{reported:.3f}: the round trip changed the pixels")
    check(len(seen) >= 5 and seen == sorted(seen) and seen[-1] == 1.0,
          f"8-bit image: progress {seen}")
    # The same pixels as a new document.
    outcome, result, _ = run(ProtectJob(cloak, doc, background, choices(destination="document")))
    if check(outcome == "finished", f"new document: {outcome}: {result}"):
        new = result["document"]
        check((new.width(), new.height(), new.colorDepth()) == (96, 80, "U8"),
              f"new document: {new.width()}x{new.height()} {new.colorDepth()}")
        compare(before, new.topLevelNodes()[0].pixelData(0, 0, 96, 80), "U8", "new document",
                EPS_CODES["medium"])
        new.close()
    check(len(doc.topLevelNodes()) == 2, "new document: a layer was added to the original")
    doc.close()


def sixteen_bit_with_transparency(cloak, work):
    alpha = lambda x, y: 0.0 if x < 16 else (0.5 if y < 12 else 1.0)
    doc = document("deep", 80, 64, "U16")
    background = doc.topLevelNodes()[0]
    background.setPixelData(pixels("U16", 80, 64, alpha), 0, 0, 80, 64)
    doc.refreshProjection()
    before = bytes(background.pixelData(0, 0, 80, 64))
    outcome, result, _ = run(ProtectJob(cloak, doc, None, choices(strength="high")))
    if check(outcome == "finished", f"16-bit image: {outcome}: {result}"):
        layer = result["layer"]
        check((layer.colorDepth(), layer.colorProfile()) == ("U16", doc.colorProfile()),
              f"16-bit image: the new layer is {layer.colorDepth()} {layer.colorProfile()}, the "
              f"document {doc.colorProfile()}")
        after = layer.pixelData(0, 0, 80, 64)
        compare(before, after, "U16", "16-bit image", EPS_CODES["high"])
        a, b = channels(before, "U16"), channels(after, "U16")
        fine = sum(b[i] % 257 != 0 for i in range(len(b)) if i % 4 != 3 and a[i] != b[i])
        check(fine > 0, "16-bit image: every changed value is on the 8-bit grid")
        check(bytes(background.pixelData(0, 0, 80, 64)) == before, "16-bit image: original changed")
    # A PNG next to the saved .kra, 16-bit RGBA as the document.
    kra = os.path.join(work, "deep.kra")
    check(doc.saveAs(kra), "16-bit image: could not save the .kra")
    outcome, result, _ = run(ProtectJob(cloak, doc, None, choices(destination="file")))
    if check(outcome == "finished", f"next to the .kra: {outcome}: {result}"):
        check(result["file"] == os.path.join(work, "deep-cloaked.png"), f"written {result['file']}")
        with open(result["file"], "rb") as f:
            png = f.read()
        check(png[24:26] == bytes([16, 6]), f"next to the .kra: PNG depth and colour type "
              f"{list(png[24:26])}, not 16-bit RGBA")
        check(b"iCCP" in png[:png.find(b"IDAT")], "next to the .kra: no colour profile")
        check(free_name(work, "deep") == os.path.join(work, "deep-cloaked-2.png"),
              "a second PNG would not get a free name")
    doc.close()


def two_layers(cloak):
    doc = document("two", 96, 80, "U8")
    background = doc.topLevelNodes()[0]
    background.setPixelData(pixels("U8", 96, 80), 0, 0, 96, 80)
    figure = doc.createNode("Figure", "paintlayer")
    doc.rootNode().addChildNode(figure, None)
    figure.setPixelData(pixels("U8", 48, 40, lambda x, y: 1.0 if x > 4 else 0.0), 24, 16, 48, 40)
    sky = doc.createNode("Sky", "paintlayer")
    doc.rootNode().addChildNode(sky, None)
    sky.setPixelData(pixels("U8", 96, 10), 0, 0, 96, 10)
    doc.refreshProjection()
    figure_before = bytes(figure.pixelData(24, 16, 48, 40))
    background_before = bytes(background.pixelData(0, 0, 96, 80))
    outcome, result, _ = run(ProtectJob(cloak, doc, figure, choices(mode="cloak", decoy="woodcut")))
    if check(outcome == "finished", f"active layer: {outcome}: {result}"):
        names = [n.name() for n in doc.topLevelNodes()]
        check(names == ["Background", "Figure", "Cloak cloak medium fast seed 3 decoy woodcut",
                        "Sky"], f"active layer: layers {names}, the new one not above its source")
        layer = result["layer"]
        check(layer.bounds() == figure.bounds(), f"active layer: bounds {layer.bounds()}")
        compare(figure_before, layer.pixelData(24, 16, 48, 40), "U8", "active layer",
                EPS_CODES["medium"])
        check(bytes(figure.pixelData(24, 16, 48, 40)) == figure_before, "the layer changed")
        check(bytes(background.pixelData(0, 0, 96, 80)) == background_before,
              "the other layer changed")
    # Smaller than the encoders see: cloak's own one line, with the layer's name; nothing added.
    tiny = doc.createNode("Tiny", "paintlayer")
    doc.rootNode().addChildNode(tiny, None)
    tiny.setPixelData(pixels("U8", 20, 24), 2, 2, 20, 24)
    count = len(doc.topLevelNodes())
    outcome, message, _ = run(ProtectJob(cloak, doc, tiny, choices()))
    check(outcome == "failed" and message == "'Tiny': 20x24 is too small to protect (the encoders "
          "see at least 32 px a side)", f"tiny layer: {outcome}: {message!r}")
    check(len(doc.topLevelNodes()) == count, "tiny layer: a layer was added")
    doc.close()


def cancel_and_missing_cloak(cloak):
    doc = document("big", 384, 320, "U8")
    doc.topLevelNodes()[0].setPixelData(pixels("U8", 384, 320), 0, 0, 384, 320)
    doc.refreshProjection()
    outcome, _, seen = run(ProtectJob(cloak, doc, None, choices(preset="max")), cancel_at=0.1)
    check(outcome == "cancelled", f"cancel: {outcome} after progress {seen}")
    check(seen and seen[-1] < 1.0, f"cancel: it ran to the end ({seen[-3:]})")
    check(len(doc.topLevelNodes()) == 1, "cancel: a layer was added")
    left = [f for f in os.listdir(QDir.tempPath()) if f.startswith("cloak-krita-")]
    check(not left, f"cancel: left {left} in {QDir.tempPath()}")

    floating = document("float", 64, 64, "F32")
    try:
        ProtectJob(cloak, floating, None, choices()).start()
        check(False, "a 32-bit float document was accepted")
    except cloak_cli.CloakError as e:
        check(str(e).startswith("Cloak protects 8- and 16-bit RGB or greyscale images, not RGBA "
                                "F32"), f"float document: {e}")
    floating.close()

    path = os.environ["PATH"]
    os.environ["PATH"] = "/nonexistent"
    try:
        cloak_cli.find_cloak("")
        check(False, "no cloak on PATH: found one")
    except cloak_cli.CloakError as e:
        check(str(e) == cloak_cli.NOT_FOUND and "\n" not in str(e), f"no cloak on PATH: {e}")
    finally:
        os.environ["PATH"] = path
    try:
        cloak_cli.find_cloak("/nonexistent/cloak")
        check(False, "a configured cloak that is not there: accepted")
    except cloak_cli.CloakError as e:
        check(str(e).startswith("/nonexistent/cloak: not an executable"), f"configured: {e}")
    try:
        cloak_cli.settings_listing("/nonexistent/cloak")
        check(False, "settings from a cloak that is not there: accepted")
    except cloak_cli.CloakError as e:
        check(str(e).startswith("/nonexistent/cloak: cannot run it") and "\n" not in str(e),
              f"settings from a missing cloak: {e}")
    # Refused up front, in one line, before anything is exported.
    for node, over, want in ((None, {"destination": "file"}, "save the document first"),
                             (doc.createNode("Empty", "paintlayer"), {}, "'Empty' is empty")):
        try:
            ProtectJob(cloak, doc, node, choices(**over)).start()
            check(False, f"{want}: accepted")
        except cloak_cli.CloakError as e:
            check(str(e).startswith(want) and "\n" not in str(e), f"{want}: {e}")
    left = [f for f in os.listdir(QDir.tempPath()) if f.startswith("cloak-krita-")]
    check(not left, f"refused up front: left {left} in {QDir.tempPath()}")
    outcome, message, _ = run(ProtectJob("/nonexistent/cloak", doc, None, choices()))
    check(outcome == "failed" and message.startswith("/nonexistent/cloak: cannot start it"),
          f"a cloak that cannot start: {outcome}: {message!r}")
    check(len(doc.topLevelNodes()) == 1, "a cloak that cannot start: a layer was added")
    doc.close()


def remembered_settings(listing):
    defaults = dialog.initial_choices(listing, {})
    keys = ("mode", "strength", "preset", "invisible_at", "decoy")
    check({k: defaults[k] for k in keys} == {k: listing["defaults"][k] for k in keys},
          f"defaults {defaults} are not cloak's {listing['defaults']}")
    mine = dict(defaults, strength="high", preset="max", invisible_at="training-size", seed=42,
                destination="file")
    dialog.save_choices(mine)
    check(dialog.initial_choices(listing, dialog.saved_choices()) == mine, "settings not kept")
    old = dict(mine, version=dialog.SETTINGS_VERSION + 1)
    Krita.instance().writeSetting(dialog.SETTINGS_GROUP, dialog.SETTINGS_KEY, json.dumps(old))
    check(dialog.saved_choices() == {}, "settings of another version were read")
    odd = dialog.initial_choices(listing, {"strength": "ultra", "seed": -1, "mode": 7})
    check(odd == defaults, f"unknown saved values were kept: {odd}")


def main(args):
    result_file, cloak, work = args
    try:
        listing = cloak_cli.settings_listing(cloak)
        EPS_CODES.update({s["name"]: s["eps_codes"] for s in listing["strengths"]})
        remembered_settings(listing)
        eight_bit_image(cloak)
        sixteen_bit_with_transparency(cloak, work)
        two_layers(cloak)
        cancel_and_missing_cloak(cloak)
    except Exception:
        failures.append(traceback.format_exc())
    with open(result_file, "w") as f:
        json.dump({"failures": failures}, f)
