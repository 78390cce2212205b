"""Issue 24's figure (not part of the test run): the time from clicking Protect in Krita's dialog
to the new layer, against `cloak protect` on the same pixels. Run in headless Krita:

    QT_QPA_PLATFORM=offscreen PYTHONPATH=plugins/krita:bench \\
      kritarunner -s krita_ok_to_layer -f main CLOAK PAINTING SIDE REPEATS

PAINTING is scaled to SIDE px on its long side (a Krita document, 8-bit sRGB); each repeat times
the plug-in's job (export, cloak, the result back as a layer) and then `cloak protect` on the PNG
the job exported, both at the default settings. Prints the times to stderr, with the plug-in's
own part (export before cloak starts, the layer after it ends), which the machine's noise does not
hide.
"""
import os
import subprocess
import sys
import tempfile
import time

from krita import InfoObject, Krita
from PyQt5.QtCore import QEventLoop

from cloak_krita.protect import ProtectJob

SETTINGS = {"mode": "guard", "strength": "medium", "preset": "balanced", "decoy": "cubist",
            "seed": 0, "target": "", "destination": "layer"}


def timed_job(cloak, doc):
    """Seconds from start to the new layer, and of them the plug-in's own (export and import)."""
    loop, ended = QEventLoop(), {}
    job = ProtectJob(cloak, doc, None, SETTINGS)
    job.finished.connect(lambda r: (ended.update(result=r), loop.quit()))
    job.failed.connect(lambda m: (ended.update(error=m), loop.quit()))
    start = time.perf_counter()
    job.start()
    exported = time.perf_counter()
    job._process.finished.connect(lambda *_: ended.update(cloak_done=time.perf_counter()))
    if not ended:
        loop.exec_()
    done = time.perf_counter()
    if "error" in ended:
        raise SystemExit(ended["error"])
    doc.rootNode().removeChildNode(ended["result"]["layer"])
    return done - start, (exported - start) + (done - ended["cloak_done"])


def main(args):
    cloak, painting, side, repeats = args[0], args[1], int(args[2]), int(args[3])
    k = Krita.instance()
    doc = k.openDocument(painting)
    doc.setBatchmode(True)
    scale = side / max(doc.width(), doc.height())
    doc.scaleImage(round(doc.width() * scale), round(doc.height() * scale), doc.resolution(),
                   doc.resolution(), "Bicubic")
    doc.waitForDone()
    png = os.path.join(tempfile.mkdtemp(prefix="cloak-krita-bench-"), "painting.png")
    config = InfoObject()
    config.setProperty("forceSRGB", False)
    k.setBatchmode(True)
    doc.exportImage(png, config)
    out = png.replace(".png", "-cloaked.png")
    print(f"{os.path.basename(painting)} at {doc.width()}x{doc.height()} {doc.colorDepth()}",
          file=sys.stderr)
    for r in range(repeats):
        plugin, own = timed_job(cloak, doc)
        start = time.perf_counter()
        subprocess.run([cloak, "-q", "protect", png, "-o", out, "--overwrite"], check=True)
        cli = time.perf_counter() - start
        print(f"repeat {r + 1}: Protect to new layer {plugin:.2f} s (export and import "
              f"{own:.2f} s), cloak protect {cli:.2f} s", file=sys.stderr, flush=True)
