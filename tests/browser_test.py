#!/usr/bin/env python3
"""Drives `cloak serve` from headless Chromium, as an artist would: opens the page, uploads an
image, waits for the result, moves the before/after slider, downloads the protected file and
checks it, and saves a screenshot of the page (the README's). Fails, never skips, when the
browser cannot start.

    tests/browser_test.py CLOAK IMAGE SCREENSHOT
"""
import http.client
import os
import struct
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the download is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def post_raw_name(url, name, data):
    """Uploads `data` through the API under the file name `name` (bytes, sent as they are)."""
    host, rest = url[len("http://"):].split("/", 1)
    token = rest.split("token=", 1)[1]
    boundary = b"cloakbrowsertest"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name +
            b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n--" + boundary + b"--\r\n")
    c = http.client.HTTPConnection(host, timeout=60)
    c.request("POST", "/api/jobs", body, {"X-Cloak-Token": token,
                                          "Content-Type": "multipart/form-data; boundary=cloakbrowsertest"})
    status = c.getresponse().status
    c.close()
    return status


def main():
    cloak, image, screenshot = sys.argv[1:4]
    want = png_size(open(image, "rb").read())
    downloads = tempfile.mkdtemp(prefix="cloak-browser-")
    server = subprocess.Popen([cloak, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"first line is not the address: {url!r}"
        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--window-size=1280,1000"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                                  "download.prompt_for_download": False})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.execute_cdp_cmd("Page.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": downloads})
        # Names as old archives and scripts send them: Latin-1 is kept (shown as UTF-8), a NUL is
        # refused up front.
        image_bytes = open(image, "rb").read()
        assert post_raw_name(url, b"caf\xe9.png", image_bytes) == 201
        assert post_raw_name(url, b"q-cloaked.png\x00.png", image_bytes) == 400
        started = time.time()
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#mode option"))
        assert driver.find_element(By.ID, "mode").get_attribute("value") == "guard"
        assert driver.find_element(By.ID, "strength").get_attribute("value") == "medium"

        WebDriverWait(driver, 30).until(lambda d: "caf\u00e9.png" in [
            e.text for e in d.find_elements(By.CSS_SELECTOR, "#queue li .name")])
        driver.find_element(By.CSS_SELECTOR, "#queue li .cancel").click()  # not that one
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#queue li[data-state=cancelled]"))

        driver.find_element(By.ID, "pick-files").send_keys(os.path.abspath(image))
        WebDriverWait(driver, 600).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#queue li[data-state=done]")
            or d.find_elements(By.CSS_SELECTOR, "#queue li[data-state=failed]"))
        state = driver.find_element(By.CSS_SELECTOR, "#queue li:last-child .state").text
        assert driver.find_elements(By.CSS_SELECTOR, "#queue li[data-state=done]"), state
        print(f"protected in the browser in {time.time() - started:.1f} s ({state})")

        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "after").get_property(
            "naturalWidth") > 0 and d.find_elements(By.CSS_SELECTOR, "#figures tr"))
        slider = driver.find_element(By.ID, "slider")
        before = driver.find_element(By.ID, "after").value_of_css_property("clip-path")
        slider.send_keys(Keys.ARROW_LEFT * 20)  # the keyboard moves it, as a mouse would
        after = driver.find_element(By.ID, "after").value_of_css_property("clip-path")
        assert slider.get_attribute("value") == "30", slider.get_attribute("value")
        assert before != after and "30%" in after, (before, after)

        figures = driver.find_element(By.ID, "figures").text
        assert "Butteraugli" in figures and "no more visible than a JPEG q" in figures, figures
        assert "× noise" in figures and "what plain noise as visible keeps" in figures, figures
        # Where the change shows: the right side of the comparison becomes the heat map.
        driver.find_element(By.ID, "show-visibility").click()
        WebDriverWait(driver, 30).until(
            lambda d: "/view/visibility.png" in d.find_element(By.ID, "after").get_attribute("src")
            and d.find_element(By.ID, "after").get_property("naturalWidth") > 0)
        driver.find_element(By.ID, "show-visibility").click()

        driver.find_element(By.ID, "show-ai").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "ai-after").get_property("naturalWidth") > 0)
        driver.save_screenshot(screenshot)

        driver.find_element(By.ID, "download-one").click()
        name = os.path.splitext(os.path.basename(image))[0] + "-cloaked.png"
        path = os.path.join(downloads, name)
        deadline = time.time() + 60
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.2)
        assert os.path.exists(path), f"{name} was not downloaded: {os.listdir(downloads)}"
        data = open(path, "rb").read()
        assert png_size(data) == want, (png_size(data), want)
        assert data != open(image, "rb").read(), "the download is the original"
        print(f"downloaded {name}: {png_size(data)[0]}x{png_size(data)[1]}, screenshot {screenshot}")
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
