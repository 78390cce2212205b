"""Test harness (tests/krita/run.py gui), enabled beside the Cloak plug-in in a throw-away Krita
profile: once Krita's window is up, it checks that Tools > Scripts holds Protect with Cloak...,
triggers it, screenshots the dialog over the painting, chooses the fast effort and clicks Protect,
watches the progress dialog, reads and closes the message with the figures, and quits Krita. What
it saw goes to $CLOAK_KRITA_SMOKE as JSON."""
import json
import os
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import (QApplication, QComboBox, QDialogButtonBox, QMessageBox,
                             QProgressDialog)

seen = {"failures": []}


def menu_path(menu_bar, *titles):
    """The labels of the actions in the menu that `titles` lead to (their & removed)."""
    actions = menu_bar.actions()
    for title in titles:
        menu = next((a.menu() for a in actions
                     if a.menu() and a.text().replace("&", "") == title), None)
        if menu is None:
            return None
        menu.aboutToShow.emit()  # Krita fills some menus as they open
        actions = menu.actions()
    return [a.text().replace("&", "") for a in actions]


def capture():
    """Runs inside the dialog's own event loop: what it shows, a screenshot, then Protect."""
    try:
        dialog = QApplication.activeModalWidget()
        seen["dialog"] = dialog.windowTitle() if dialog else None
        if dialog:
            boxes = dialog.findChildren(QComboBox)
            seen["choices"] = {box.currentText(): [box.itemText(i) for i in range(box.count())]
                               for box in boxes}
            QApplication.processEvents()
            shot = QApplication.primaryScreen().grabWindow(0)
            seen["screenshot"] = shot.save(os.environ["CLOAK_KRITA_SCREENSHOT"], "PNG")
            effort = next(box for box in boxes if box.findData("fast") >= 0)
            effort.setCurrentIndex(effort.findData("fast"))
            dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok).click()
    except Exception:
        seen["failures"].append(traceback.format_exc())


def finish():
    with open(os.environ["CLOAK_KRITA_SMOKE"], "w") as f:
        json.dump(seen, f)
    for doc in Krita.instance().documents():
        doc.setModified(False)  # no "save changes?" on the way out
    QTimer.singleShot(500, Krita.instance().action("file_quit").trigger)


def watch(polls=[0]):
    """Until the run's message shows: notes the progress dialog, then reads and closes it."""
    try:
        polls[0] += 1
        modal = QApplication.activeModalWidget()
        if isinstance(modal, QProgressDialog):
            seen["progress"] = modal.labelText()
        if isinstance(modal, QMessageBox):
            seen["message"] = modal.text()
            modal.accept()
            doc = Krita.instance().activeDocument()
            seen["layers"] = [n.name() for n in doc.topLevelNodes()]
            return finish()
        if polls[0] < 600:
            return QTimer.singleShot(200, watch)
        seen["failures"].append("no message within 120 s of Protect")
    except Exception:
        seen["failures"].append(traceback.format_exc())
    finish()


def smoke():
    try:
        window = Krita.instance().activeWindow()
        window.qwindow().setGeometry(QApplication.primaryScreen().availableGeometry())
        seen["scripts_menu"] = menu_path(window.qwindow().menuBar(), "Tools", "Scripts")
        action = Krita.instance().action("cloak_protect")
        seen["action"] = action.text() if action else None
        if action:
            QTimer.singleShot(4000, capture)
            action.trigger()  # returns once capture() has clicked Protect
            return watch()
    except Exception:
        seen["failures"].append(traceback.format_exc())
    finish()


class Smoke(Extension):
    def setup(self):
        notifier = Krita.instance().notifier()
        notifier.windowCreated.connect(lambda: QTimer.singleShot(8000, smoke))

    def createActions(self, window):
        pass


Krita.instance().addExtension(Smoke(Krita.instance()))
