"""The Flink distribution inside the ``apache-flink`` wheel, where riverflink finds it.

No accelerator, no switch: riverflink compiles its Java classes against the wheel's
Flink jars, and ``riverflink cluster`` / ``riverflink submit`` run the wheel's own Flink
scripts. None of these paths is a promise of PyFlink's.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.compat


def test_the_flink_jars_riverflink_compiles_against(pyflink_home):
    """Contact: ``pyflink/lib/flink-dist*.jar``, the class path of ``javac`` for
    riverflink's Java classes (router, socket source, early mini-cluster, loopback agent).
    Relied on by: ``riverflink.pipeline.router_jar`` (``_pyflink_jars``, ``build_jar``: without
    them nothing compiles, and jobs route in Flink SQL, slower)."""
    from riverflink.pipeline.router_jar import _pyflink_jars

    jars = _pyflink_jars()
    assert [jar.parent for jar in jars] == [pyflink_home / "lib"]
    assert jars[0].name.startswith("flink-dist")


@pytest.mark.parametrize(
    "path",
    [
        "bin/jobmanager.sh",
        "bin/taskmanager.sh",
        "bin/flink",
        "conf/log4j.properties",
        "conf/log4j-cli.properties",
    ],
)
def test_the_flink_scripts_riverflink_cluster_runs(pyflink_home, path):
    """Contact: Flink's launch scripts and logging configuration in the wheel
    (``FLINK_HOME`` is the ``pyflink`` package directory).
    Relied on by: ``riverflink.cluster.standalone`` (``bin/jobmanager.sh``,
    ``bin/taskmanager.sh``; ``conf/log4j*.properties`` where ``flink-conf/`` has none) and
    ``riverflink.cluster.submit`` (``bin/flink run``)."""
    from riverflink.cluster.standalone import flink_home

    assert flink_home() == pyflink_home
    assert (pyflink_home / path).is_file()
