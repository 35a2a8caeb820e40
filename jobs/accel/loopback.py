"""Keep the Python workers' gRPC services on localhost, with a Java agent.

Flink's Python operators serve their workers (control, data, state, logging) on free
ports on every network interface, though the workers connect to ``localhost``. Flink
gives no setting for it, so riverflink's agent
(``jobs/accel/java/riverflink/LoopbackAgent.java``, loaded into local runs' JVMs and
riverflink cluster's TaskManagers) redefines the one Beam class that opens those
ports so that they bind to loopback. If the class is not the one the agent knows, it
leaves it alone and says so; the run then warns once and goes on with Flink's binding.

``RIVERFLINK_LOOPBACK=0`` (or ``RIVERFLINK_ACCELERATE=0``) leaves the agent out: the
ports then listen on every interface, as Flink's own do; keep such a machine's ports
closed to untrusted networks.
"""

from __future__ import annotations

import os

from riverflink.accel import enabled, turn_off

__all__ = ["LOOPBACK_PROPERTY", "loopback_problem", "use_loopback_agent", "warn_if_exposed"]


#: What riverflink's agent sets in the JVM (``jobs/accel/java/riverflink/LoopbackAgent.java``).
LOOPBACK_PROPERTY = "riverflink.grpc.loopback"


def use_loopback_agent() -> bool:
    """Load riverflink's agent into the JVM PyFlink starts next; False where there is no
    jar to load it from (no JDK: see :mod:`riverflink.pipeline.router_jar`).

    Flink's Python operators serve their workers (control, data, state, logging) on free
    ports on every network interface, though the workers connect to ``localhost``; the
    agent makes them listen on localhost only. Flink itself gives no setting for it.
    """
    if not enabled("loopback"):
        return False
    from riverflink.pipeline.router_jar import router_jar

    jar = router_jar()
    if jar is None:
        return False
    flag = f"-javaagent:{jar}"
    args = os.environ.get("JVM_ARGS", "").split()
    if flag not in args:
        os.environ["JVM_ARGS"] = " ".join([*args, flag])
    return True


def warn_if_exposed() -> None:
    """One warning line when the agent was loaded but did not take (then Flink's own
    binding stands: every interface)."""
    from pyflink.java_gateway import get_gateway

    try:
        problem = loopback_problem(get_gateway())
    except Exception as exc:  # noqa: BLE001 - a check must not fail the run
        problem = f"could not ask the JVM whether riverflink's agent ran: {exc}"
    if problem is not None:
        turn_off("loopback", problem)


def loopback_problem(gateway) -> str | None:
    """Why the workers' services listen on every interface in this JVM, or None when
    they listen on localhost (or the agent was never asked for)."""
    if not any(arg.startswith("-javaagent:") for arg in os.environ.get("JVM_ARGS", "").split()):
        return None
    outcome = gateway.jvm.java.lang.System.getProperty(LOOPBACK_PROPERTY)
    if outcome == "patched":
        return None
    return (
        "the Python workers' services (Flink's gRPC ports for this run) listen on every "
        f"network interface, not only localhost: riverflink's agent said {outcome!r}. "
        "Keep this machine's ports closed to untrusted networks."
    )
