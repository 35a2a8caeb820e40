package riverflink;

import java.io.InputStream;
import java.lang.reflect.Field;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.ServiceLoader;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.flink.api.dag.Pipeline;
import org.apache.flink.client.deployment.executors.LocalExecutor;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.core.classloading.SubmoduleClassLoader;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.minicluster.RpcServiceSharing;
import org.apache.flink.runtime.rpc.CleanupOnCloseRpcSystem;
import org.apache.flink.runtime.rpc.RpcSystem;
import org.apache.flink.runtime.taskexecutor.TaskExecutor;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.MathUtils;
import org.apache.flink.util.Reference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The local mini-cluster, started while the job is still being built.
 *
 * <p>Flink's local executor starts the mini-cluster only once it holds the finished job, and
 * on a cold JVM that start takes most of a second. This cluster starts in a thread of its own
 * as soon as the environment exists, with exactly the configuration the executor would give it
 * ({@code PerJobMiniClusterFactory}: one task manager, slots from {@code
 * taskmanager.numberOfTaskSlots} or else the job's parallelism). {@link #execute} then runs the
 * job through Flink's own {@link LocalExecutor}, whose cluster factory hands it this cluster;
 * its {@link #start} waits for the early start instead of starting a second time. The job's
 * client shuts the cluster down when the job ends, as it does any local cluster. Should the
 * executor ask for another shape of cluster (more slots than expected), it gets a new one and
 * this one is closed.
 */
public final class EarlyMiniCluster extends MiniCluster {

    private static final Logger LOG = LoggerFactory.getLogger(EarlyMiniCluster.class);

    private final MiniClusterConfiguration shape;
    private final CompletableFuture<Void> started = new CompletableFuture<>();
    private final AtomicBoolean used = new AtomicBoolean();
    private volatile MiniCluster replacement;
    private volatile boolean closing;

    /** Starts at once, in the background, the cluster for a job of this parallelism. */
    public EarlyMiniCluster(Configuration configuration, int parallelism) {
        this(clusterConfiguration(configuration, parallelism));
    }

    private EarlyMiniCluster(MiniClusterConfiguration shape) {
        super(shape, () -> Reference.owned(rpcSystem(shape.getConfiguration())));
        this.shape = shape;
        Thread thread = new Thread(this::startEarly, "riverflink-early-mini-cluster");
        thread.setDaemon(true);
        thread.start();
    }

    /** {@code PerJobMiniClusterFactory.getMiniClusterConfig}, for a known parallelism. */
    static MiniClusterConfiguration clusterConfiguration(Configuration base, int parallelism) {
        Configuration configuration = new Configuration(base);
        if (!configuration.contains(RestOptions.BIND_PORT)) {
            configuration.set(RestOptions.BIND_PORT, "0");
        }
        int taskManagers = configuration.get(TaskManagerOptions.MINI_CLUSTER_NUM_TASK_MANAGERS);
        Map<String, String> overrides = configuration.get(PipelineOptions.PARALLELISM_OVERRIDES);
        int most = parallelism;
        if (overrides != null) {
            for (String value : overrides.values()) {
                most = Math.max(most, Integer.parseInt(value));
            }
        }
        int slots =
                configuration
                        .getOptional(TaskManagerOptions.NUM_TASK_SLOTS)
                        .orElse(
                                most > 0
                                        ? MathUtils.divideRoundUp(most, taskManagers)
                                        : TaskManagerOptions.NUM_TASK_SLOTS.defaultValue());
        return new MiniClusterConfiguration.Builder()
                .setConfiguration(configuration)
                .setNumTaskManagers(taskManagers)
                .setRpcServiceSharing(RpcServiceSharing.SHARED)
                .setNumSlotsPerTaskManager(slots)
                .build();
    }

    /*
     * Flink's RPC system (Pekko) lives in a jar inside flink-dist, which Flink copies to a new
     * temporary file (24 MB) each time a cluster starts: 0.15-0.2 s of every run, and a file
     * left in /tmp by every run that is killed. This cluster reads it from one copy kept beside
     * riverflink's own jar instead, made on first use; Flink's way where that copy cannot be.
     */
    static RpcSystem rpcSystem(Configuration configuration) {
        try {
            Path jar = rpcJar();
            SubmoduleClassLoader loader =
                    new SubmoduleClassLoader(
                            new URL[] {jar.toUri().toURL()}, RpcSystem.class.getClassLoader());
            RpcSystem system = ServiceLoader.load(RpcSystem.class, loader).iterator().next();
            return new CleanupOnCloseRpcSystem(system, loader, null);
        } catch (Exception | LinkageError notHere) {
            LOG.info("riverflink: Flink's RPC system copied the usual way ({})", notHere.toString());
            return RpcSystem.load(configuration);
        }
    }

    private static final String RPC_JAR = "flink-rpc-akka.jar";

    private static Path rpcJar() throws Exception {
        URL location = EarlyMiniCluster.class.getProtectionDomain().getCodeSource().getLocation();
        Path own = Paths.get(location.toURI());
        Path jar = own.resolveSibling(own.getFileName().toString().replace(".jar", "-rpc.jar"));
        if (Files.isRegularFile(jar)) {
            return jar;
        }
        Path partial = Files.createTempFile(own.getParent(), ".rpc-", ".jar");
        try (InputStream in = RpcSystem.class.getClassLoader().getResourceAsStream(RPC_JAR)) {
            if (in == null) {
                throw new IllegalStateException(RPC_JAR + " is not in Flink's class path");
            }
            Files.copy(in, partial, StandardCopyOption.REPLACE_EXISTING);
            Files.move(partial, jar, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(partial);
        }
        return jar;
    }

    private void startEarly() {
        try {
            super.start();
            for (TaskExecutor taskManager : taskManagers()) {
                watch(taskManager);
            }
            started.complete(null);
        } catch (Throwable failure) {
            started.completeExceptionally(failure);
        }
    }

    /*
     * A task manager that fails fatally is closed by the mini-cluster and never replaced, so a
     * job that then restarts waits for slots forever. It happens: after a task failure, Beam's
     * shared Python resources can be released twice while the failed task cleans up ("Reference
     * count must not be negative"), and the mini-cluster takes that as fatal for the whole task
     * manager. So each task manager that ends while the cluster runs is replaced by a new one.
     */
    private void watch(TaskExecutor taskManager) {
        taskManager.getTerminationFuture().whenComplete((ok, failure) -> replace());
    }

    private synchronized void replace() {
        if (closing || !isRunning()) {
            return;
        }
        try {
            List<TaskExecutor> before = new ArrayList<>(taskManagers());
            startTaskManager();
            for (TaskExecutor taskManager : taskManagers()) {
                if (!before.contains(taskManager)) {
                    watch(taskManager);
                }
            }
            LOG.warn("riverflink: a task manager ended while its job ran; started a new one");
        } catch (Exception failed) {
            LOG.error("riverflink: could not replace a task manager that ended", failed);
        }
    }

    @SuppressWarnings("unchecked")
    private List<TaskExecutor> taskManagers() throws Exception {
        Field field = MiniCluster.class.getDeclaredField("taskManagers");
        field.setAccessible(true);
        return new ArrayList<>((List<TaskExecutor>) field.get(this));
    }

    @Override
    public CompletableFuture<Void> closeAsync() {
        closing = true; // its task managers end now: not to be replaced
        return super.closeAsync();
    }

    @Override
    public CompletableFuture<Void> closeAsyncWithoutCleaningHighAvailabilityData() {
        closing = true;
        return super.closeAsyncWithoutCleaningHighAvailabilityData();
    }

    /** Waits for the early start (and fails as it failed): the executor calls this. */
    @Override
    public void start() throws Exception {
        try {
            started.get();
        } catch (ExecutionException failed) {
            Throwable cause = failed.getCause();
            throw cause instanceof Exception ? (Exception) cause : failed;
        }
    }

    /** The port of the REST API once started ({@code rest.port} 0 binds any free port). */
    public int restPort() throws Exception {
        start();
        return getRestAddress().get().getPort();
    }

    /**
     * Submits the job as {@code env.executeAsync(graph)} does on a local environment, on this
     * cluster; returns the job's client once the job is submitted.
     */
    public JobClient execute(StreamExecutionEnvironment env, Pipeline graph) throws Exception {
        if (!used.compareAndSet(false, true)) {
            throw new IllegalStateException("this mini-cluster already ran a job");
        }
        Configuration configuration = (Configuration) field(env, "configuration");
        ClassLoader classLoader = (ClassLoader) field(env, "userClassloader");
        LocalExecutor executor =
                LocalExecutor.createWithFactory(
                        configuration, wanted -> suits(wanted) ? this : replaced(wanted));
        return executor.execute(graph, configuration, classLoader).get();
    }

    private boolean suits(MiniClusterConfiguration wanted) {
        return wanted.getNumTaskManagers() == shape.getNumTaskManagers()
                && wanted.getConfiguration()
                        .get(TaskManagerOptions.NUM_TASK_SLOTS)
                        .equals(shape.getConfiguration().get(TaskManagerOptions.NUM_TASK_SLOTS));
    }

    private MiniCluster replaced(MiniClusterConfiguration wanted) {
        closeWhenStarted();
        replacement = new MiniCluster(wanted);
        return replacement;
    }

    /**
     * Closes the cluster (a finished job's client has closed it already) and any that replaced
     * it, waiting at most this long; whether they are down.
     */
    public boolean closeWithin(long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        try {
            for (MiniCluster cluster : replacement == null ? List.of(this) : List.of(this, replacement)) {
                long left = deadline - System.nanoTime();
                cluster.closeAsync().get(Math.max(0, left), TimeUnit.NANOSECONDS);
            }
            return true;
        } catch (Exception notYet) {
            return false;
        }
    }

    /** Closes the cluster unless a job was given to it (the job's end closes it then). */
    public void discard() {
        if (used.compareAndSet(false, true)) {
            closeWhenStarted();
        }
    }

    private void closeWhenStarted() {
        started.whenComplete((ok, failure) -> closeAsync());
    }

    /** What the environment's own {@code executeAsync} passes to its executor. */
    private static Object field(StreamExecutionEnvironment env, String name) throws Exception {
        Field field = StreamExecutionEnvironment.class.getDeclaredField(name);
        field.setAccessible(true);
        return field.get(env);
    }
}
