"""Helpers of the compat tests: fresh copies of installed modules, Java reflection."""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path


def fresh_module(name: str) -> types.ModuleType:
    """A new, unregistered copy of the installed module ``name``, its code run afresh.

    Patches that riverflink applies in this process (``pipeline_commits``,
    ``shorten_sampling``) change the registered module; a fresh copy shows the installed
    code as it is, and can be patched without touching the registered one.
    """
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, f"{name} is not installed"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def java_class(gateway, name: str, loader=None):
    """The ``java.lang.Class`` ``name``, from Flink's class loader (or ``loader``)."""
    if loader is None:
        from pyflink.util.java_utils import load_java_class

        return load_java_class(name)
    return gateway.jvm.java.lang.Class.forName(name, False, loader)


def class_array(gateway, *classes):
    array = gateway.new_array(gateway.jvm.java.lang.Class, len(classes))
    for i, cls in enumerate(classes):
        array[i] = cls
    return array


def object_array(gateway, *values):
    array = gateway.new_array(gateway.jvm.java.lang.Object, len(values))
    for i, value in enumerate(values):
        array[i] = value
    return array


def riverflink_loader(gateway, jar: Path):
    """A class loader of riverflink's jar over Flink's, as ``EarlyCluster.start`` makes."""
    jvm = gateway.jvm
    flink = java_class(gateway, "org.apache.flink.runtime.minicluster.MiniCluster")
    urls = gateway.new_array(jvm.java.net.URL, 1)
    urls[0] = jvm.java.net.URL(jar.as_uri())
    return jvm.java.net.URLClassLoader(urls, flink.getClassLoader())


def javap(jar: Path, class_names: list, javap_executable: str) -> dict:
    """``javap -p -c`` of classes of ``jar`` (one run for all): class name -> its text."""
    import subprocess
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory(prefix="riverflink-javap-") as work:
        with zipfile.ZipFile(jar) as archive:
            paths = [archive.extract(n.replace(".", "/") + ".class", work) for n in class_names]
        done = subprocess.run(
            [javap_executable, "-p", "-c", *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    texts, name = {}, None
    for line in done.stdout.splitlines(keepends=True):
        declared = re.search(r"\b(?:class|interface) ([\w.$]+)", line)
        if line.startswith("Compiled from"):
            name = None
        elif name is None and declared:
            name = declared.group(1)
            texts[name] = ""
        if name is not None:
            texts[name] += line
    return texts


def method_code(javap_text: str, method: str) -> list:
    """What the bytecode of ``method`` (every overload) refers to, in javap's comments
    (``Method owner.name:descriptor``, ``String text``...), in order."""
    found, inside = [], False
    for line in javap_text.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(";"):
            inside = f" {method}(" in line or line.strip().startswith(f"{method}(")
        elif inside and "//" in line:
            found.append(line.split("//", 1)[1].strip())
    return found
